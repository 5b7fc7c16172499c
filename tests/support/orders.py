"""Calls built directly in tests, each given its order as intake would have made it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from calls.models import Call, Order
from calls.transitions import DECIDING_OUTCOMES, order_status_for


def with_orders(calls: Iterable[Call]) -> list[Call]:
    """`calls` (unsaved), each without an order given its store's order of the same order id:
    the existing one, or a new one with the first such call's message and the status and key
    press decision its latest call gives (as calls/transitions.py would have left them)."""
    calls = list(calls)
    first: dict[tuple[int, str], Call] = {}
    last: dict[tuple[int, str], Call] = {}
    for call in calls:
        if call.shop_order_id is None:
            key = (call.store_id, call.order_id)
            first.setdefault(key, call)
            last[key] = call
    existing = {
        (order.store_id, order.order_id): order
        for order in Order.objects.filter(
            store_id__in={store for store, _ in first}, order_id__in={oid for _, oid in first}
        )
    }
    new = []
    for key, call in first.items():
        if key in existing:
            continue
        latest = last[key]
        decision = DECIDING_OUTCOMES.get(Call.Outcome(latest.outcome)) if latest.outcome else None
        new.append(
            Order(
                store_id=call.store_id,
                campaign_id=call.campaign_id,
                created_at=call.created_at,
                status=order_status_for(latest.state, latest.outcome),
                decision=decision or "",
                decided_at=(latest.finalized_at or latest.created_at) if decision else None,
                **call.message_values(),
            )
        )
    for order in Order.objects.bulk_create(new):
        existing[(order.store_id, order.order_id)] = order
    for call in calls:
        if call.shop_order_id is None:
            call.shop_order = existing[(call.store_id, call.order_id)]
    return calls


def create_call(**fields: Any) -> Call:
    """Call.objects.create, with the call's order; the order then follows this call, its latest
    (unless decided by hand), as calls/transitions.py would have left it."""
    (call,) = with_orders([Call(**fields)])
    call.save(force_insert=True)
    decision = DECIDING_OUTCOMES.get(Call.Outcome(call.outcome)) if call.outcome else None
    follows: dict[str, Any] = {"status": order_status_for(call.state, call.outcome)}
    if decision is not None:
        follows.update(decision=decision, decided_at=call.finalized_at or call.created_at)
    Order.objects.filter(pk=call.shop_order_id, decided_by__isnull=True).update(**follows)
    return call
