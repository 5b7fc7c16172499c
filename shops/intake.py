"""An order a shop sent, stored as robodash's Order and queued for its call.

The same path as the single-order form (calls.intake.single.create_single_call): the store's intake
lock, the order id checked against every order the store already has (a shop re-sending it,
however often, places no second call), then the order and its queued call in one transaction.
An order whose phone robodash cannot call is stored as rejected, with the reason, and never
called; so is one the shop's payload reader found a problem with (a refused character, an amount
past what robodash stores: IncomingOrder.problems), with values it made storable. An order that
is not cash on delivery is acknowledged and only counted.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from calls.formatting import verdict_reasons
from calls.intake.known import OrderAlreadyKnown, already_known, known_orders, lock_intake
from calls.intake.rows import max_length_of
from calls.intake.single import create_single_call
from calls.models import CENT, Campaign, Order, Store
from calls.phones import InvalidPhone, normalize_pk_mobile
from calls.transitions import reject_at_intake
from shops.payloads import IncomingOrder

# The campaign each source's orders join: a batch label, one per store and source.
INTAKE_CAMPAIGNS = Campaign.INTAKE_NAMES


NOT_COD = "not cash on delivery"


@dataclass(frozen=True)
class Received:
    """What became of an incoming order, for the shop's answer and the Integrations page."""

    # "queued", "skipped", "held" (the store's rules), "known", "rejected", "not_cod"; a
    # cancellation's "withdrawn", "too_late"; a parcel's "recorded"; "ignored" (the message
    # says why).
    outcome: str
    order: Order | None
    message: str


def intake_campaign(store: Store, source: str, name: str = "") -> Campaign:
    campaign, _ = Campaign.objects.get_or_create(
        store=store, name=name or INTAKE_CAMPAIGNS[Order.Source(source)]
    )
    return campaign


def receive_order(
    store: Store,
    incoming: IncomingOrder,
    source: str,
    *,
    campaign_name: str = "",
    arrived_at: dt.datetime | None = None,
) -> Received:
    """Take in a shop's order: stored, judged by the store's rules, and queued for its call
    unless they skip or hold it. `arrived_at`: when robodash received it (a webhook processed
    later by a worker), else now."""
    if not incoming.cash_on_delivery:
        return Received("not_cod", None, f"{NOT_COD} ({incoming.payment}): ignored")
    campaign = intake_campaign(store, source, campaign_name)
    if incoming.problems:
        problems = {name: [reason] for name, reason in incoming.problems.items()}
        return _rejected(store, campaign, incoming, source, problems, arrived_at)
    try:
        order = create_single_call(
            campaign,
            phone=incoming.phone,
            amount=incoming.amount if incoming.amount is not None else "",
            order_id=incoming.order_id,
            store_name=store.name,
            source=source,
            customer_name=incoming.customer_name,
            shop_ref=incoming.shop_order_id,
            arrived_at=arrived_at,
        )
    except OrderAlreadyKnown as known:
        return Received("known", known.order, known.message_dict["order_id"][0])
    except ValidationError as error:
        return _rejected(store, campaign, incoming, source, error.message_dict, arrived_at)
    if order.verdict == Order.Verdict.SKIP:
        why = verdict_reasons(order.verdict_reasons)
        return Received("skipped", order, f"order {incoming.order_id} not called: skipped ({why})")
    if order.verdict == Order.Verdict.HOLD:
        why = verdict_reasons(order.verdict_reasons)
        return Received("held", order, f"order {incoming.order_id} held for a person ({why})")
    return Received("queued", order, f"order {incoming.order_id} queued for its call")


def _rejected(
    store: Store,
    campaign: Campaign,
    incoming: IncomingOrder,
    source: str,
    problems: dict[str, list[str]],
    arrived_at: dt.datetime | None = None,
) -> Received:
    """Keep an order that cannot be called, with why, unless the store has it already."""
    reason = "; ".join(message for messages in problems.values() for message in messages)
    if not incoming.order_id or len(incoming.order_id) > max_length_of(Order, "order_id"):
        return Received("rejected", None, reason)
    try:
        phone = normalize_pk_mobile(incoming.phone)
    except InvalidPhone:
        phone = incoming.phone[: max_length_of(Order, "phone")]
    with transaction.atomic():
        lock_intake(store)
        if known_orders(store, [incoming.order_id]):
            known = already_known(store, incoming.order_id)
            return Received("known", known.order, known.message_dict["order_id"][0])
        order = Order(
            store=store,
            campaign=campaign,
            source=source,
            order_id=incoming.order_id,
            phone=phone,
            # Rounded as the column would round it (the reader bounds it to the column's size).
            amount=incoming.amount.quantize(CENT) if incoming.amount is not None else 0,
            voice_id=campaign.voice_id or store.default_voice_id,
            customer_name=incoming.customer_name[: max_length_of(Order, "customer_name")],
            shop_ref=incoming.shop_order_id,
            arrived_at=arrived_at or timezone.now(),
            text1=store.name[: max_length_of(Order, "text1")],
            text2=incoming.order_id,
        )
        reject_at_intake(order, reason)
    return Received("rejected", order, f"order {incoming.order_id} not called: {reason}")
