"""Calls built directly in tests, each given its order as intake would have made it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from calls.models import Call, Order
from calls.transitions import DECIDING_OUTCOMES, FOLLOW_UP_OF_OUTCOME, order_status_for


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
        new.append(
            Order(
                store_id=call.store_id,
                campaign_id=call.campaign_id,
                created_at=call.created_at,
                **_as_transitions_leave_it(latest),
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
    follows = _as_transitions_leave_it(call)
    order = Order.objects.filter(pk=call.shop_order_id).exclude(decided_via="agent")
    queued = {name: follows.pop(name) for name in ("followup", "followup_at") if name in follows}
    order.update(**follows)
    if queued and "decision" not in follows:  # an unanswered call queues an undecided order only
        order.filter(decision="").update(**queued)
    return call


def _as_transitions_leave_it(latest: Call) -> dict[str, Any]:
    """The order's status, key-press decision and follow-up after `latest`, its latest call
    (the store's default rule: the queue after the last attempt)."""
    at = latest.finalized_at or latest.created_at
    fields: dict[str, Any] = {"status": order_status_for(latest.state, latest.outcome)}
    if latest.sent_at is not None and latest.purpose == Call.Purpose.VERIFY:
        fields["called"] = True  # as mark_sent leaves it
    outcome = Call.Outcome(latest.outcome) if latest.outcome else None
    decision = DECIDING_OUTCOMES.get(outcome) if outcome else None
    reason = FOLLOW_UP_OF_OUTCOME.get(outcome) if outcome else None
    if decision is not None:
        fields.update(decision=decision, decided_via="key", decided_at=at, followup="")
    elif reason is not None:
        fields.update(followup=reason, followup_at=at)
    return fields
