"""Bulk actions on orders (the /orders/ page): confirm, cancel or call again many orders at once.

Each order's change is the same one a person makes on the order's page — decide_by_hand or
call_again — with its own event and write-back; an order the action does not fit is skipped and
counted by why (already decided, a call in flight, decided by an agent), never half-changed.

Up to IN_REQUEST orders run while the request waits. A larger batch runs in a worker
(calls.tasks.run_order_batch), a chunk of orders per transaction that also moves the batch's
`position`, so a worker lost mid-way loses nothing and repeats nothing: beat's
look_after_order_batches hands a batch that stopped moving to a worker again, and it resumes
after its last chunk. The page polls `position` as a progress bar.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from calls import actions
from calls.models import Order, OrderBatch, User
from calls.transitions import (
    TransitionRefused,
    call_in_flight,
    decide_by_hand,
    held_by_another,
)
from robodash.celery import enqueue

log = logging.getLogger(__name__)

IN_REQUEST = 500  # orders; more run in a worker, with progress shown
MAX_ORDERS = 50_000  # one batch; a merchant narrows the filters for more
CHUNK = 100  # orders per transaction in the worker
STALLED_AFTER = dt.timedelta(minutes=5)

# Why an order was left as it was, in the reader's words.
SKIP_REASONS = {
    "decided": _("already had a decision"),
    "busy": _("a call was still in flight"),
    "decided_by_agent": _("decided by an agent: not called again"),
    "held": _("held by another agent"),
    "bad_phone": _("a number that cannot be called"),
    "refused": _("could not be changed now"),
    "gone": _("no longer there"),
}


class BatchRefused(Exception):
    """The batch cannot start; the message says why, to the person who asked."""


def start_batch(user: User, action: str, order_ids: list[int], note: str = "") -> OrderBatch:
    """Record the batch and run it now if it is small, else hand it to a worker (after the
    commit). The orders are taken in the order given."""
    if action not in OrderBatch.Action.values:
        raise BatchRefused(_("Choose confirm, cancel or call again."))
    if not order_ids:
        raise BatchRefused(_("Select at least one order."))
    try:
        note = actions.check_note(note)
    except TransitionRefused as refusal:
        raise BatchRefused(str(refusal)) from None
    if len(order_ids) > MAX_ORDERS:
        raise BatchRefused(
            _("%(count)s orders is more than one action takes (%(limit)s): narrow the filters.")
            % {"count": len(order_ids), "limit": MAX_ORDERS}
        )
    batch = OrderBatch.objects.create(
        action=action, note=note.strip(), created_by=user, order_ids=list(dict.fromkeys(order_ids))
    )
    if len(batch.order_ids) <= IN_REQUEST:
        run_batch(batch.pk)
        batch.refresh_from_db()
    else:
        transaction.on_commit(lambda: enqueue("calls.tasks.run_order_batch", batch.pk))
    return batch


def run_batch(batch_id: int) -> None:
    """Work through the batch a chunk per transaction until it is done. Two workers given the
    same batch take turns on its row lock; each chunk starts where the last one committed."""
    while _run_chunk(batch_id):
        pass


def _run_chunk(batch_id: int) -> bool:
    """One chunk; False when the batch is done (or not running)."""
    with transaction.atomic():
        batch = (
            OrderBatch.objects.select_for_update()
            .select_related("created_by")
            .filter(pk=batch_id, status=OrderBatch.Status.RUNNING)
            .first()
        )
        if batch is None:
            return False
        ids = batch.order_ids[batch.position : batch.position + CHUNK]
        now = timezone.now()
        if not ids:
            OrderBatch.objects.filter(pk=batch.pk).update(
                status=OrderBatch.Status.DONE, finished_at=now, moved_at=now
            )
            return False
        changed = 0
        skipped = dict(batch.skipped)
        orders = Order.objects.in_bulk(ids)
        for order_id in ids:
            order = orders.get(order_id)
            why = _apply(batch, order) if order is not None else "gone"
            if why is None:
                changed += 1
            else:
                skipped[why] = skipped.get(why, 0) + 1
        OrderBatch.objects.filter(pk=batch.pk).update(
            position=F("position") + len(ids),
            changed=F("changed") + changed,
            skipped=skipped,
            moved_at=now,
        )
        return True


def _apply(batch: OrderBatch, order: Order) -> str | None:
    """The batch's action on one order, in a savepoint; None when it changed the order, else
    the code of why it was skipped."""
    user = batch.created_by
    if held_by_another(order, user):
        return "held"
    if call_in_flight(order) is not None:
        return "busy"
    try:
        with transaction.atomic():
            if batch.action == OrderBatch.Action.CALL_AGAIN:
                if order.decided_via == Order.DecidedVia.AGENT:
                    return "decided_by_agent"
                if not actions.callable_phone(order.phone):
                    return "bad_phone"
                actions.call_again(order, user)
                return None
            if order.decision:
                return "decided"  # a bulk action never overrides a decision: one by one
            decision = (
                Order.Decision.CONFIRMED
                if batch.action == OrderBatch.Action.CONFIRM
                else Order.Decision.CANCELLED
            )
            decide_by_hand(order, user, decision, batch.note, replaces="")
            return None
    except TransitionRefused:
        return "refused"  # changed meanwhile by someone else (decided, a call placed)


def resume_stalled_batches(now: dt.datetime | None = None) -> list[int]:
    """Running batches that have not moved for STALLED_AFTER (their worker was lost), each
    taken by a conditional update so two sweeps hand it on once; the caller enqueues them."""
    now = now or timezone.now()
    stalled = OrderBatch.objects.filter(
        status=OrderBatch.Status.RUNNING, moved_at__lt=now - STALLED_AFTER
    )
    taken = []
    for batch_id, moved_at in stalled.values_list("pk", "moved_at"):
        if OrderBatch.objects.filter(pk=batch_id, moved_at=moved_at).update(moved_at=now):
            taken.append(batch_id)
    return taken
