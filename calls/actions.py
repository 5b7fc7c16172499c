"""What people do to a call from the pages: call again, withdraw, mark handled, claim.

Withdrawing and calling again change a call's state, so their writes are calls/transitions.py's;
this module adds the checks and the follow-up bookkeeping (claims, handled notes).

Each action is one transaction and safe against a racing worker or a second agent: the change is
a conditional UPDATE (or runs under a row lock) and its row count says who won. Each writes a
CallEvent naming the user, so the call's timeline shows who did what.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from calls.models import Call, CallEvent, Order, User
from calls.pipeline.dispatch import wake_dispatcher
from calls.transitions import (
    ACTIVE_STATES,
    MAX_NOTE_LENGTH,
    TransitionRefused,
    queue_call,
    record_event,
    withdraw,
)

__all__ = [
    "ACTIVE_STATES",
    "ActionRefused",
    "call_again",
    "claim",
    "mark_handled",
    "release",
    "take_over",
    "withdraw",
]

# Refusals of the transitions and of these actions read the same to the person who asked.
ActionRefused = TransitionRefused


def call_again(call: Call, user: User) -> Call:
    """Queue a new call for the order of `call`, with the same phone and texts, linked to `call`
    as its parent.

    Refused while any call of the order is still queued, sending or in progress, so a customer
    is never rung twice at once, and once the order is decided by hand. The order's row is
    locked for the check-and-insert, so two agents pressing the button together create one
    call, not two: the second waits for the lock, then sees the first one's call.
    """
    with transaction.atomic():
        order = Order.objects.select_for_update().select_related("store").get(pk=call.shop_order_id)
        if order.decided_by_id is not None:
            raise ActionRefused(
                _("Order %(order)s was decided by hand (%(decision)s); it is not called again.")
                % {"order": order.order_id, "decision": order.get_decision_display().lower()}
            )
        busy = order.calls.filter(state__in=ACTIVE_STATES).order_by("created_at", "id").first()
        if busy is not None:
            state = busy.get_state_display().lower()
            if busy.pk == call.pk:
                refusal = _(
                    "This call is still %(state)s; wait for its outcome before calling again."
                ) % {"state": state}
            else:
                refusal = _(
                    "Call #%(pk)s for this order is still %(state)s; wait for its outcome before "
                    "calling again."
                ) % {"pk": busy.pk, "state": state}
            raise ActionRefused(refusal)
        child = queue_call(
            order,
            campaign_id=call.campaign_id,
            scheduled_for=order.store.next_calling_time(timezone.now()),
            parent=call,
            actor=user,
        )
        if call.assigned_to_id is not None:
            # The follow-up stays with whoever holds it: the new call is theirs too.
            Call.objects.filter(pk=child.pk).update(assigned_to_id=call.assigned_to_id)
        record_event(call, CallEvent.Kind.CALLBACK, actor=user, child=child.pk)
        # Send it now rather than at the next sweep (a nudge after commit; the sweep would
        # find the queued row in Postgres anyway).
        wake_dispatcher()
    return child


def mark_handled(call: Call, user: User, note: str) -> bool:
    """Close the follow-up on a final call, with the agent's note. False when someone had
    already marked it handled (their note is kept, not overwritten). Refused while another
    agent holds the follow-up: take it over first (take_over), so the timeline says so."""
    note = note.strip()
    if len(note) > MAX_NOTE_LENGTH:
        raise ActionRefused(
            _("The note is %(length)s characters long; keep it under %(limit)s.")
            % {"length": len(note), "limit": MAX_NOTE_LENGTH}
        )
    with transaction.atomic():
        now = timezone.now()
        won = (
            Call.objects.filter(pk=call.pk, state=Call.State.FINAL, handled_at__isnull=True)
            .filter(Q(assigned_to__isnull=True) | Q(assigned_to=user))
            .update(handled_by=user, handled_at=now, handled_note=note, updated_at=now)
        )
        if not won:
            current = Call.objects.select_related("assigned_to").get(pk=call.pk)
            if current.state != Call.State.FINAL:
                raise ActionRefused(
                    _(
                        "This call is still in flight; it can be marked handled once it has an "
                        "outcome."
                    )
                )
            if current.handled_at is None and current.assigned_to is not None:
                raise ActionRefused(
                    _("%(name)s holds this follow-up; take it over first.")
                    % {"name": current.assigned_to.username}
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
        raise ActionRefused(_("Only calls waiting for a follow-up can be claimed."))
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


def release(call: Call, user: User) -> bool:
    """Give back one's own claim, so another agent can take the follow-up. False when `user`
    did not hold it."""
    with transaction.atomic():
        now = timezone.now()
        won = Call.objects.filter(pk=call.pk, assigned_to=user).update(
            assigned_to=None, updated_at=now
        )
        if won:
            record_event(call, CallEvent.Kind.RELEASED, actor=user, at=now)
    return bool(won)


def take_over(call: Call, user: User) -> bool:
    """Take an open follow-up another agent holds, on purpose: the timeline names both. False
    when it was handled meanwhile; True when `user` holds it now."""
    with transaction.atomic():
        locked = (
            Call.objects.select_for_update(of=("self",))
            .select_related("assigned_to")
            .filter(pk=call.pk, handled_at__isnull=True, outcome__in=Call.FOLLOW_UP_OUTCOMES)
            .first()
        )
        if locked is None:
            return False
        previous = locked.assigned_to
        if previous == user:
            return True
        now = timezone.now()
        Call.objects.filter(pk=call.pk).update(assigned_to=user, updated_at=now)
        record_event(
            call,
            CallEvent.Kind.TAKEN_OVER,
            actor=user,
            at=now,
            previous=previous.username if previous is not None else None,
        )
    return True
