"""An order a shop sent, stored as robodash's Order and queued for its call.

The same path as the single-order form (calls.intake.single.create_single_call): the store's intake
lock, the order id checked against every order the store already has (a shop re-sending it,
however often, places no second call), then the order and its queued call in one transaction.
An order whose phone robodash cannot call is stored as rejected, with the reason, and never
called; so is one the shop's payload reader found a problem with (a refused character, an amount
past what robodash stores: IncomingOrder.problems), with values it made storable. An order that
is not cash on delivery is acknowledged and only counted.

A shop's cancellation withdraws the order's queued calls (`withdraw_order`). One that comes before
the order it cancels is kept (EarlyCancellation) and the order is withdrawn as soon as it is made:
shops send their webhooks in no promised order, and a lost create comes again later.
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
from calls.models import CENT, Call, Campaign, Order, Store
from calls.notices import queue_notice
from calls.phones import InvalidPhone, normalize_pk_mobile
from calls.transitions import reject_at_intake, withdraw, withdraw_uncalled
from shops.models import EarlyCancellation
from shops.payloads import IncomingOrder

# The campaign each source's orders join: a batch label, one per store and source.
INTAKE_CAMPAIGNS = Campaign.INTAKE_NAMES


NOT_COD = "not cash on delivery"


@dataclass(frozen=True)
class Received:
    """What became of an incoming order, for the shop's answer and the Integrations page."""

    # A ReceivedWebhook.Outcome: "queued", "skipped", "held" (the store's rules), "known",
    # "rejected", "not_cod"; a cancellation's "withdrawn", "too_late", "early_cancel"; a
    # parcel's "recorded"; "ignored" (the message
    # says why).
    outcome: str
    order: Order | None
    message: str


def not_cod(incoming: IncomingOrder) -> Received:
    return Received("not_cod", None, f"{NOT_COD} ({incoming.payment}): ignored")


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
        return not_cod(incoming)
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
            placed_at=incoming.placed_at,
        )
    except OrderAlreadyKnown as known:
        return Received("known", known.order, known.message_dict["order_id"][0])
    except ValidationError as error:
        return _rejected(store, campaign, incoming, source, error.message_dict, arrived_at)
    if EarlyCancellation.objects.filter(store=store, order_id=order.order_id).exists():
        withdraw_order(store, order.order_id)
        return Received(
            "withdrawn",
            order,
            f"order {incoming.order_id} was cancelled in the shop before it came: not called",
        )
    if order.verdict == Order.Verdict.SKIP:
        why = verdict_reasons(order.verdict_reasons)
        return Received("skipped", order, f"order {incoming.order_id} not called: skipped ({why})")
    if order.verdict == Order.Verdict.HOLD:
        why = verdict_reasons(order.verdict_reasons)
        return Received("held", order, f"order {incoming.order_id} held for a person ({why})")
    return Received("queued", order, f"order {incoming.order_id} queued for its call")


def withdraw_order(store: Store, order_id: str) -> Received:
    """The shop cancelled the order: its queued calls are withdrawn (a queued notice too: the
    customer is not told of a parcel that will not come) and the store's cancelled notice is
    queued (calls/notices.py). An order not made yet is withdrawn when it is."""
    with transaction.atomic():
        order = Order.objects.filter(store=store, order_id=order_id).first()
        if order is None:
            # Under the intake lock, which a single order takes shared while it is made: either
            # that order is stored now, or it will find this row when it looks.
            lock_intake(store)
            order = Order.objects.filter(store=store, order_id=order_id).first()
        if order is None:
            EarlyCancellation.objects.get_or_create(store=store, order_id=order_id[:100])
            return Received(
                "early_cancel",
                None,
                f"order {order_id} is not here yet: it will not be called when it comes",
            )
        # Not the cancelled notice itself, queued when the shop first said so: a resend keeps it.
        queued = order.calls.filter(state=Call.State.QUEUED).exclude(
            notice_of=Call.NoticeOf.CANCELLED
        )
        withdrawn = [call for call in queued if withdraw(call, None)]
        # Skipped or held by the store's rules: never rung, so not rung to hear it is cancelled.
        uncalled = withdraw_uncalled(order)
        if not uncalled:
            queue_notice(order, Call.NoticeOf.CANCELLED)
    if uncalled or any(call.purpose == Call.Purpose.VERIFY for call in withdrawn):
        return Received("withdrawn", order, f"order {order_id} cancelled in the shop: not called")
    return Received("too_late", order, f"order {order_id} cancelled in the shop after its call")


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
            placed_at=incoming.placed_at,
            text1=store.name[: max_length_of(Order, "text1")],
            text2=incoming.order_id,
        )
        reject_at_intake(order, reason)
    return Received("rejected", order, f"order {incoming.order_id} not called: {reason}")
