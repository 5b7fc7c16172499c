"""What people do to an order and its calls from the pages: call again, withdraw, correct the
phone, and the follow-up work on the order (claim, release, take over, mark handled, the next
order, a callback time the customer asked for).

Withdrawing and calling again change a call's state, so their writes are calls/transitions.py's;
this module adds the checks and the follow-up bookkeeping (claims, handled notes).

Each action is one transaction and safe against a racing worker or a second agent: the change is
a conditional UPDATE (or runs under a row lock) and its row count says who won. Each writes an
event naming the user, so the order's timeline shows who did what.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from calls import formatting
from calls.models import Call, CallEvent, Order, OrderEvent, User
from calls.phones import InvalidPhone, normalize_pk_mobile
from calls.pipeline.dispatch import wake_dispatcher
from calls.transitions import (
    ACTIVE_STATES,
    MAX_NOTE_LENGTH,
    TransitionRefused,
    call_in_flight,
    held_by_another,
    held_refusal,
    queue_call,
    record_event,
    record_order_event,
    withdraw,
)

__all__ = [
    "ACTIVE_STATES",
    "ActionRefused",
    "call_again",
    "change_phone",
    "claim",
    "due_followups",
    "mark_handled",
    "next_order",
    "release",
    "set_callback",
    "take_over",
    "withdraw",
]

# Refusals of the transitions and of these actions read the same to the person who asked.
ActionRefused = TransitionRefused

# How far ahead a callback may be set: a customer who asks to be rung "next month" is better
# served by a note and Mark handled than by an order hidden from the queue for weeks.
MAX_CALLBACK_AHEAD = dt.timedelta(days=14)


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
    is never rung twice at once, once an agent decided the order, and once its parcel is known
    to have shipped (there is nothing left to verify). The order's row is locked
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
        if order.delivery:
            raise ActionRefused(
                _("Order %(order)s is known to be %(delivery)s: it is not called again to verify.")
                % {"order": order.order_id, "delivery": order.get_delivery_display().lower()}
            )
        if not callable_phone(order.phone):
            raise ActionRefused(
                _("%(phone)s is not a number robodash can call: correct the order's phone first.")
                % {"phone": order.phone or "—"}
            )
        busy = call_in_flight(order)
        if busy is not None:
            raise ActionRefused(
                _(
                    "Call #%(pk)s for this order is still %(state)s; wait for its outcome before "
                    "calling again."
                )
                % {"pk": busy.pk, "state": busy.get_state_display().lower()}
            )
        latest = order.calls.verifying().order_by("-id").first()
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


def callable_phone(phone: str) -> bool:
    """Whether `phone` is a Pakistani mobile robodash can dial, as intake checks it (a shop's
    order rejected at intake keeps the number it came with)."""
    try:
        return normalize_pk_mobile(phone) == phone
    except InvalidPhone:
        return False


def check_note(note: str) -> str:
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
    note = check_note(note)
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
            current = Order.objects.get(pk=order.pk)
            if held_by_another(current, user):
                raise ActionRefused(held_refusal(current))
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


def _refuse_if_held_by_another(order: Order, user: User) -> None:
    """The caller holds the order's row lock."""
    if held_by_another(order, user):
        raise ActionRefused(held_refusal(order))


def change_phone(order: Order, user: User, raw: str) -> Order:
    """Correct the order's phone (the shop sent a wrong one, the customer gave another): the
    number is checked as intake checks it, the order's phone is replaced, and the old number is
    kept in the timeline (OrderEvent PHONE_CHANGED {old_phone, phone}). The next call of the
    order dials the new number: queue_call copies the order's phone onto each call.

    Refused while a call of the order is queued or in flight (it carries the old number), and
    while another agent holds the order's follow-up."""
    try:
        phone = normalize_pk_mobile(raw)
    except InvalidPhone as problem:
        raise ActionRefused(
            _("The number %(raw)s cannot be called: %(reason)s.")
            % {"raw": problem.raw or "—", "reason": problem.reason}
        ) from None
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if locked.phone == phone:
            raise ActionRefused(
                _("%(phone)s is already the number of order %(order)s.")
                % {"phone": formatting.phone(phone), "order": locked.order_id}
            )
        _refuse_if_held_by_another(locked, user)
        busy = call_in_flight(locked)
        if busy is not None:
            raise ActionRefused(
                _(
                    "Call #%(pk)s for this order is still %(state)s and dials the old number; "
                    "wait for its outcome before changing it."
                )
                % {"pk": busy.pk, "state": busy.get_state_display().lower()}
            )
        now = timezone.now()
        old_phone = locked.phone
        Order.objects.filter(pk=locked.pk).update(phone=phone, updated_at=now)
        record_order_event(
            locked,
            OrderEvent.Kind.PHONE_CHANGED,
            actor=user,
            at=now,
            old_phone=old_phone,
            phone=phone,
        )
        locked.phone, locked.updated_at = phone, now
    return locked


def set_callback(order: Order, user: User, at: dt.datetime) -> Order:
    """The customer asked to be called at `at`: the order leaves the queue until then
    (due_followups hides it) and comes back at the top (callback_set), for any agent: the
    claim is given back, as whoever is on duty then makes the call. OrderEvent CALLBACK_SET
    {callback_at} records it.

    Refused for a time past or more than MAX_CALLBACK_AHEAD ahead, for an order not in the
    queue, and while another agent holds it."""
    now = timezone.now()
    zone = order.store.zone
    if at <= now:
        raise ActionRefused(
            _("%(at)s has passed; choose a time to call back that is still to come.")
            % {"at": formatting.when(at, zone)}
        )
    if at > now + MAX_CALLBACK_AHEAD:
        raise ActionRefused(
            _("Choose a callback time within %(days)s days (by %(last)s).")
            % {
                "days": MAX_CALLBACK_AHEAD.days,
                "last": formatting.when(now + MAX_CALLBACK_AHEAD, zone),
            }
        )
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if not locked.followup:
            raise ActionRefused(
                _("Order %(order)s is not in the follow-up queue; there is nothing to call back.")
                % {"order": locked.order_id}
            )
        _refuse_if_held_by_another(locked, user)
        Order.objects.filter(pk=locked.pk).update(
            followup_at=at,
            callback_set=True,
            claimed_by=None,
            claimed_at=None,
            updated_at=now,
        )
        record_order_event(
            locked,
            OrderEvent.Kind.CALLBACK_SET,
            actor=user,
            at=now,
            callback_at=at.astimezone(dt.UTC).isoformat(),
        )
        locked.followup_at, locked.callback_set = at, True
        locked.claimed_by, locked.claimed_at = None, None
    return locked
