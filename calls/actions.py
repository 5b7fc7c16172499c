"""What people do to an order and its calls from the pages: call again, withdraw, and the
follow-up work on the order (claim, release, take over, mark handled, the next order).

Withdrawing and calling again change a call's state, so their writes are calls/transitions.py's;
this module adds the checks and the follow-up bookkeeping (claims, handled notes).

Each action is one transaction and safe against a racing worker or a second agent: the change is
a conditional UPDATE (or runs under a row lock) and its row count says who won. Each writes an
event naming the user, so the order's timeline shows who did what.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from calls.models import Call, CallEvent, Order, OrderEvent, User
from calls.pipeline.dispatch import wake_dispatcher
from calls.transitions import (
    ACTIVE_STATES,
    MAX_NOTE_LENGTH,
    TransitionRefused,
    queue_call,
    record_event,
    record_order_event,
    withdraw,
)

__all__ = [
    "ACTIVE_STATES",
    "ActionRefused",
    "call_again",
    "claim",
    "due_followups",
    "mark_handled",
    "next_order",
    "release",
    "take_over",
    "withdraw",
]

# Refusals of the transitions and of these actions read the same to the person who asked.
ActionRefused = TransitionRefused


def due_followups() -> QuerySet[Order]:
    """The orders in front of a person now: in the queue and due (a callback time an agent set
    hides the order until it comes). The predicate of order_followup_queue_idx, and its order."""
    return (
        Order.objects.exclude(followup="")
        .filter(followup_at__lte=timezone.now())
        .order_by(F("callback_set").desc(), "followup_at", "id")
    )


def call_again(order: Order, user: User) -> Call:
    """Queue a new call for `order`, with its phone and texts, linked to its latest call as the
    parent (an order rejected at intake gets its first call).

    Refused while any call of the order is still queued, sending or in progress, so a customer
    is never rung twice at once, and once an agent decided the order. The order's row is locked
    for the check-and-insert, so two agents pressing the button together create one call, not
    two: the second waits for the lock, then sees the first one's call.
    """
    with transaction.atomic():
        order = Order.objects.select_for_update().select_related("store").get(pk=order.pk)
        if order.decided_via == Order.DecidedVia.AGENT:
            raise ActionRefused(
                _("Order %(order)s was decided by hand (%(decision)s); it is not called again.")
                % {"order": order.order_id, "decision": order.get_decision_display().lower()}
            )
        busy = order.calls.filter(state__in=ACTIVE_STATES).order_by("created_at", "id").first()
        if busy is not None:
            raise ActionRefused(
                _(
                    "Call #%(pk)s for this order is still %(state)s; wait for its outcome before "
                    "calling again."
                )
                % {"pk": busy.pk, "state": busy.get_state_display().lower()}
            )
        latest = order.calls.order_by("-id").first()
        child = queue_call(
            order,
            campaign_id=latest.campaign_id if latest else order.campaign_id,
            scheduled_for=order.store.next_calling_time(timezone.now()),
            parent=latest,
            actor=user,
        )
        if latest is not None:
            record_event(latest, CallEvent.Kind.CALLBACK, actor=user, child=child.pk)
        # Send it now rather than at the next sweep (a nudge after commit; the sweep would
        # find the queued row in Postgres anyway).
        wake_dispatcher()
    return child


def _check_note(note: str) -> str:
    note = note.strip()
    if len(note) > MAX_NOTE_LENGTH:
        raise ActionRefused(
            _("The note is %(length)s characters long; keep it under %(limit)s.")
            % {"length": len(note), "limit": MAX_NOTE_LENGTH}
        )
    return note


def mark_handled(order: Order, user: User, note: str) -> bool:
    """Take the order out of the queue without a decision, with the agent's note. False when it
    was no longer in the queue (someone handled or decided it: their work is kept). Refused
    while another agent holds it: take it over first (take_over), so the timeline says so."""
    note = _check_note(note)
    with transaction.atomic():
        now = timezone.now()
        won = (
            Order.objects.filter(pk=order.pk)
            .exclude(followup="")
            .filter(Q(claimed_by__isnull=True) | Q(claimed_by=user))
            .update(
                followup="",
                followup_at=None,
                callback_set=False,
                claimed_by=None,
                claimed_at=None,
                updated_at=now,
            )
        )
        if not won:
            current = Order.objects.select_related("claimed_by").get(pk=order.pk)
            if current.followup and current.claimed_by is not None:
                raise ActionRefused(
                    _("%(name)s holds this follow-up; take it over first.")
                    % {"name": current.claimed_by.username}
                )
            return False
        record_order_event(order, OrderEvent.Kind.HANDLED, actor=user, at=now, note=note)
    return True


def claim(order: Order, user: User) -> bool:
    """Give an open follow-up to `user`. True when it is now theirs (claiming one's own claim
    again is harmless); False when another agent holds it or it left the queue."""
    with transaction.atomic():
        now = timezone.now()
        won = (
            Order.objects.filter(pk=order.pk, claimed_by__isnull=True)
            .exclude(followup="")
            .update(claimed_by=user, claimed_at=now, updated_at=now)
        )
        if won:
            record_order_event(order, OrderEvent.Kind.CLAIMED, actor=user, at=now)
            return True
    return Order.objects.filter(pk=order.pk, claimed_by=user).exists()


def next_order(user: User) -> Order | None:
    """Claim the oldest due unclaimed follow-up for `user` (due callbacks first), or None when
    there is none. Rows another agent's "Next order" is claiming right now are skipped (SKIP
    LOCKED), so two agents pressing it at once get two different orders."""
    with transaction.atomic():
        order = (
            due_followups()
            .filter(claimed_by__isnull=True)
            .select_for_update(skip_locked=True)
            .first()
        )
        if order is None:
            return None
        now = timezone.now()
        Order.objects.filter(pk=order.pk).update(claimed_by=user, claimed_at=now, updated_at=now)
        order.claimed_by, order.claimed_at = user, now
        record_order_event(order, OrderEvent.Kind.CLAIMED, actor=user, at=now, next=True)
    return order


def release(order: Order, user: User) -> bool:
    """Give back one's own claim, so another agent can take the follow-up. False when `user`
    did not hold it."""
    with transaction.atomic():
        now = timezone.now()
        won = Order.objects.filter(pk=order.pk, claimed_by=user).update(
            claimed_by=None, claimed_at=None, updated_at=now
        )
        if won:
            record_order_event(order, OrderEvent.Kind.RELEASED, actor=user, at=now)
    return bool(won)


def take_over(order: Order, user: User) -> bool:
    """Take an open follow-up another agent holds, on purpose: the timeline names both. False
    when it left the queue meanwhile; True when `user` holds it now."""
    with transaction.atomic():
        locked = (
            Order.objects.select_for_update(of=("self",))
            .select_related("claimed_by")
            .filter(pk=order.pk)
            .exclude(followup="")
            .first()
        )
        if locked is None:
            return False
        previous = locked.claimed_by
        if previous == user:
            return True
        now = timezone.now()
        Order.objects.filter(pk=order.pk).update(claimed_by=user, claimed_at=now, updated_at=now)
        record_order_event(
            order,
            OrderEvent.Kind.TAKEN_OVER,
            actor=user,
            at=now,
            previous=previous.username if previous is not None else None,
        )
    return True
