"""One order and its first call: the single-order form, a shop's webhook, the orders API. The
store's rules judge it first (calls/intake/judging.py): a skipped or held order gets no call.

The store's intake lock is taken shared: single orders do not wait for each other, only for a
bulk intake, and the unique order_unique_per_store index sorts out two with the same id.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from calls.intake.judging import judge_new_orders
from calls.intake.known import already_known, known_orders, lock_intake
from calls.intake.rows import (
    KEY_COLUMNS,
    MESSAGE_FIELDS,
    TEXT_COLUMNS,
    OrderRow,
    max_length_of,
    message_values,
    validate_order,
)
from calls.models import Campaign, Order, Store
from calls.pipeline.dispatch import wake_dispatcher
from calls.rules import OrderFacts
from calls.transitions import queue_call, take_in_judged


def _order_for(
    order: OrderRow, campaign: Campaign, store: Store, *, source: str, now: Any
) -> Order:
    return Order(
        store_id=store.pk,
        campaign_id=campaign.pk,
        source=source,
        created_at=now,
        **dict(zip(MESSAGE_FIELDS, message_values(order, campaign, store), strict=True)),
    )


def create_single_call(
    campaign: Campaign,
    *,
    phone: str,
    amount: str | Decimal,
    order_id: str,
    store_name: str,
    voice_id: str | int | None = None,
    created_by: Any = None,
    source: str = Order.Source.FORM,
    customer_name: str = "",
    shop_ref: str = "",
    arrived_at: dt.datetime | None = None,
    placed_at: dt.datetime | None = None,
    **extras: str,
) -> Order:
    """One order from the form (or a shop, `source`), judged by the store's rules
    (calls/rules.py) and, unless they skip or hold it, with its queued first call. ValidationError
    by field (the form shows them) for a bad value; OrderAlreadyKnown (one, on `order_id`) for an
    order id the store already has (it is not called again). `arrived_at`: when robodash
    received it (a webhook processed later), else now; `placed_at`: when the shop says it was
    placed, if it did (the stale rule reads both). Its call waits for the store's first-call
    delay after the arrival."""
    unknown = set(extras) - set(TEXT_COLUMNS) - set(KEY_COLUMNS)
    if unknown:
        raise TypeError(f"unexpected fields: {', '.join(sorted(unknown))}")
    values = {
        "phone": phone,
        "amount": str(amount),
        "order_id": order_id,
        "store_name": store_name,
        "voice_id": "" if voice_id is None else str(voice_id),
        # Stored with the order, not read out: checked for characters only.
        "customer_name": customer_name,
        "shop_ref": shop_ref,
        **extras,
    }
    result = validate_order(values)
    if isinstance(result, dict):
        raise ValidationError(result)
    with transaction.atomic():
        locked = Campaign.objects.select_related("store").get(pk=campaign.pk)
        store = locked.store
        lock_intake(store, shared=True)
        if result.order_id in known_orders(store, [result.order_id]):
            raise already_known(store, result.order_id)
        now = timezone.now()
        order = _order_for(result, locked, store, source=source, now=now)
        order.customer_name = customer_name[: max_length_of(Order, "customer_name")]
        order.shop_ref = shop_ref
        order.arrived_at = arrived_at or now
        order.placed_at = placed_at
        facts = OrderFacts(order.phone, order.amount, order.placed_at, order.arrived_at)
        (judged,) = judge_new_orders(store, [facts], now)
        verdict = judged.verdict
        order.duplicate_of_id = judged.duplicate_of
        try:
            with transaction.atomic():
                take_in_judged(order, verdict, now)
        except IntegrityError:  # the same order id, stored a moment ago by another request
            raise already_known(store, result.order_id) from None
        if verdict.kind != Order.Verdict.CALL:
            return order  # skipped or held: not called (a person may, by hand)
        queue_call(
            order,
            campaign_id=locked.pk,
            scheduled_for=store.first_call_time(order.arrived_at, now),
            actor=created_by,
            source=source,
        )
        wake_dispatcher()
    return order
