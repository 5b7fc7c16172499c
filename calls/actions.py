"""What people do to a call from the pages: call again, withdraw, mark handled, claim.

Each action is one transaction and safe against a racing worker or a second agent: the change is
a conditional UPDATE (or runs under a row lock) and its row count says who won. Each writes a
CallEvent naming the user, so the call's timeline shows who did what.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from calls.dispatch import wake_dispatcher
from calls.models import Call, CallEvent, User

# Calls in these states may still reach the customer: never start a second one beside them.
ACTIVE_STATES = (Call.State.QUEUED, Call.State.SENDING, Call.State.IN_PROGRESS)

# A handled note is shown on the page and in the timeline; a short paragraph is plenty.
MAX_NOTE_LENGTH = 2000


class ActionRefused(Exception):
    """The action cannot be done now; the message says why, in words for the person who asked."""


def call_again(call: Call, user: User) -> Call:
    """Queue a new call for the same order, phone and texts, linked to `call` as its parent.

    Refused while any call for this order in this campaign (the original or an earlier
    call-again) is still queued, sending or in progress, so a customer is never rung twice
    at once. The family's root row is locked for the check-and-insert, so two agents pressing
    the button together create one call, not two.
    """
    with transaction.atomic():
        family = Call.objects.filter(campaign_id=call.campaign_id, order_id=call.order_id)
        # Lock the one row every member of the family shares (the first call for the order);
        # a second request waits here, then sees the call this one created.
        root_locked = (
            family.filter(parent__isnull=True).select_for_update().values_list("pk").first()
        )
        if root_locked is None:  # a family without its first call: never expected
            Call.objects.filter(pk=call.pk).select_for_update().values_list("pk").first()
        busy = family.filter(state__in=ACTIVE_STATES).order_by("created_at", "id").first()
        if busy is not None:
            what = "This call" if busy.pk == call.pk else f"Call #{busy.pk} for this order"
            raise ActionRefused(
                f"{what} is still {busy.get_state_display().lower()}; "
                "wait for its outcome before calling again."
            )
        original = Call.objects.select_related("store").get(pk=call.pk)
        now = timezone.now()
        child = Call.objects.create(
            store_id=original.store_id,
            campaign_id=original.campaign_id,
            parent=original,
            order_id=original.order_id,
            phone=original.phone,
            amount=original.amount,
            voice_id=original.voice_id,
            text1=original.text1,
            text2=original.text2,
            text3=original.text3,
            text4=original.text4,
            text5=original.text5,
            key1=original.key1,
            key2=original.key2,
            key3=original.key3,
            key4=original.key4,
            key5=original.key5,
            state=Call.State.QUEUED,
            scheduled_for=original.store.next_calling_time(now),
            created_at=now,
        )
        CallEvent.objects.create(
            call=child,
            at=now,
            kind=CallEvent.Kind.CREATED,
            actor=user,
            data={"parent": original.pk, "scheduled_for": child.scheduled_for.isoformat()},
        )
        CallEvent.objects.create(
            call=original,
            at=now,
            kind=CallEvent.Kind.CALLBACK,
            actor=user,
            data={"child": child.pk},
        )
        # Send it now rather than at the next sweep (a nudge after commit; the sweep would
        # find the queued row in Postgres anyway).
        wake_dispatcher()
    return child


def withdraw(call: Call, user: User) -> bool:
    """Stop a call before it is sent. False when it was no longer queued (the dispatcher
    claimed it first, or it was already final): then it can no longer be withdrawn."""
    with transaction.atomic():
        now = timezone.now()
        won = Call.objects.filter(pk=call.pk, state=Call.State.QUEUED).update(
            state=Call.State.FINAL,
            outcome=Call.Outcome.WITHDRAWN,
            finalized_at=now,
            next_poll_at=None,
            updated_at=now,
        )
        if won:
            CallEvent.objects.create(
                call_id=call.pk, at=now, kind=CallEvent.Kind.WITHDRAWN, actor=user
            )
    return bool(won)


def mark_handled(call: Call, user: User, note: str) -> bool:
    """Close the follow-up on a final call, with the agent's note. False when someone had
    already marked it handled (their note is kept, not overwritten)."""
    note = note.strip()
    if len(note) > MAX_NOTE_LENGTH:
        raise ActionRefused(
            f"The note is {len(note)} characters long; keep it under {MAX_NOTE_LENGTH}."
        )
    with transaction.atomic():
        now = timezone.now()
        won = Call.objects.filter(
            pk=call.pk, state=Call.State.FINAL, handled_at__isnull=True
        ).update(handled_by=user, handled_at=now, handled_note=note, updated_at=now)
        if not won:
            current = Call.objects.only("state").get(pk=call.pk)
            if current.state != Call.State.FINAL:
                raise ActionRefused(
                    "This call is still in flight; it can be marked handled once it has an outcome."
                )
            return False
        CallEvent.objects.create(
            call_id=call.pk, at=now, kind=CallEvent.Kind.HANDLED, actor=user, data={"note": note}
        )
    return True


def claim(call: Call, user: User) -> bool:
    """Assign an open follow-up to `user`. True when it is now theirs (claiming one's own claim
    again is harmless); False when another agent holds it or it was already handled."""
    if call.outcome not in Call.FOLLOW_UP_OUTCOMES:
        raise ActionRefused("Only calls waiting for a follow-up can be claimed.")
    with transaction.atomic():
        now = timezone.now()
        won = Call.objects.filter(
            pk=call.pk,
            outcome__in=Call.FOLLOW_UP_OUTCOMES,
            assigned_to__isnull=True,
            handled_at__isnull=True,
        ).update(assigned_to=user, updated_at=now)
        if won:
            CallEvent.objects.create(
                call_id=call.pk, at=now, kind=CallEvent.Kind.ASSIGNED, actor=user
            )
            return True
    return Call.objects.filter(pk=call.pk, assigned_to=user).exists()
