"""Notice calls: a call telling the customer of an event of their order (it shipped, the shop
cancelled it), in a voice the store chose for that event. A notice asks nothing: it never moves
the order (status, decision, follow-up, re-attempts, write-backs), and nothing waits for it
(calls/transitions.py reads only verification calls, `Call.objects.verifying()`, wherever it
follows "the order's latest call"). It is placed, followed to its final status and charged like
any call, inside the store's calling hours, and counted apart in the figures (notice_calls,
notice_charges).

Who asks for one, in the transaction of the change it tells of:
- shipped: calls.transitions (record_delivery, record_deliveries: a courier's sheet) sends
  `order_shipped` when an update moves the parcel from nothing to shipped (a parcel first heard
  of as delivered or returned gets none: it has arrived); `queue_shipped_notices` receives it;
- cancelled: the shop's cancellation (shops/views.py), after the order's queued calls are
  withdrawn — a queued shipped notice among them (the customer is not told of a parcel that
  will not come), which leaves the order as it is.

At most one per order and event, however often the shop sends it (the unique constraint
call_one_notice_per_order_event; transitions.queue_notice_call).
"""

from __future__ import annotations

from django.utils import timezone

from calls import transitions
from calls.models import Call, Order, Store
from calls.pipeline.dispatch import wake_dispatcher

# Where the parcel has arrived (or come back): telling the customer it shipped, or that the shop
# cancelled it, would be news from the past.
ARRIVED = (Order.Delivery.DELIVERED, Order.Delivery.RETURNED)


def notice_voice(store: Store, event: str) -> int | None:
    """The voice id `store` chose for a notice of `event` (Call.NoticeOf), None: no notice."""
    if event == Call.NoticeOf.SHIPPED:
        return store.notify_on_shipped
    if event == Call.NoticeOf.CANCELLED:
        return store.notify_on_cancelled
    raise ValueError(f"not a notice event: {event!r}")


def queue_notice(order: Order, event: str) -> Call | None:
    """Queue the notice call of `event` for `order` at the store's next calling time, if the
    store has a voice for it and the parcel has not arrived; None when no notice is due or the
    order has had it already. The caller's transaction holds the change it tells of."""
    store = Store.objects.get(pk=order.store_id)
    voice_id = notice_voice(store, event)
    if voice_id is None or order.delivery in ARRIVED:
        return None
    call = transitions.queue_notice_call(
        order,
        event,
        voice_id=voice_id,
        scheduled_for=store.next_calling_time(timezone.now()),
    )
    if call is not None:
        wake_dispatcher()  # on commit: placed now (within hours) rather than at the next sweep
    return call


def queue_shipped_notices(order_ids: list[int], **kwargs: object) -> None:
    """calls.signals.order_shipped: the shipped notice of each order, if its store has a voice
    for one (one query when it has none). One at a time, a savepoint each: a store that chose
    a notice pays for it on every parcel anyway."""
    orders = Order.objects.filter(
        pk__in=order_ids, store__notify_on_shipped__isnull=False
    ).order_by("pk")
    for order in orders:
        queue_notice(order, Call.NoticeOf.SHIPPED)
