"""The order page's panel (its decision, follow-up and actions) and the page around it: what
the order page draws, and what an action on the order answers htmx with when it came from the
page (calls/views/followups.py answer_order_action). Below both the order views and the
follow-up views, which share it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.utils import timezone

from calls import actions
from calls.models import BlockedPhone, Call, CallEvent, Order, OrderEvent, User
from calls.permissions import CALL_ACTIONS, user_can
from calls.pipeline.balances import call_again_question
from calls.transitions import ACTIVE_STATES, whose_decision
from calls.views import signed_in_user

LOCAL_MINUTE = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> reads and writes
# What a person marks a parcel as on the order's page (calls/views/orders.py order_delivery):
# its end. Shipped is the shop's or the courier's news, not something seen at the desk.
HAND_DELIVERIES = (Order.Delivery.DELIVERED, Order.Delivery.RETURNED)


def callback_bounds(order: Order) -> dict[str, str]:
    """The callback form's limits (and a first suggestion, an hour on), in the store's zone."""
    now = timezone.now().astimezone(order.store.zone)
    return {
        "callback_min": f"{now + dt.timedelta(minutes=1):{LOCAL_MINUTE}}",
        "callback_max": f"{now + actions.MAX_CALLBACK_AHEAD:{LOCAL_MINUTE}}",
        "callback_suggested": f"{now + dt.timedelta(hours=1):{LOCAL_MINUTE}}",
    }


# An order gathers a handful of calls (the first, a few call-agains and re-attempts) and a few
# dozen events; these are ceilings that keep the page bounded whatever happens.
CALLS_LIMIT = 50
EVENTS_LIMIT = 500
DUPLICATES_LIMIT = 20  # later orders linked to this one as its possible duplicates


@dataclass
class Moment:
    """One line of the order's timeline: an event of the order itself or of one of its calls."""

    at: dt.datetime
    kind: str
    what: str
    actor: User | None
    event: OrderEvent | CallEvent
    call_id: int | None = None
    data: dict[str, Any] = field(default_factory=dict)


def get_order(pk: int) -> Order:
    return get_object_or_404(
        Order.objects.select_related(
            "store", "campaign", "decided_by", "claimed_by", "duplicate_of"
        ),
        pk=pk,
    )


def timeline(order: Order, calls: list[Call]) -> list[Moment]:
    """The order's events and its calls' events, oldest first (each list read bounded)."""
    moments = [
        Moment(e.at, e.kind, e.get_kind_display(), e.actor, e, data=e.data)
        for e in order.events.select_related("actor").order_by("at", "id")[:EVENTS_LIMIT]
    ]
    for call in calls:
        moments += [
            Moment(e.at, e.kind, e.get_kind_display(), e.actor, e, call_id=call.pk, data=e.data)
            for e in call.events.all()
        ]
    moments.sort(key=lambda moment: moment.at)
    return moments


def order_context(request: HttpRequest, order: Order, **extra: Any) -> dict[str, Any]:
    calls = list(
        order.calls.select_related("campaign")
        .prefetch_related(
            Prefetch(
                "events",
                queryset=CallEvent.objects.select_related("actor").order_by("at", "id"),
            )
        )
        .order_by("created_at", "id")[:CALLS_LIMIT]
    )
    # The order's latest verification call, and whether one is in flight: a notice call
    # (calls/notices.py) is listed with the others but holds nothing up.
    verifying = [call for call in calls if call.purpose == Call.Purpose.VERIFY]
    latest = verifying[-1] if verifying else None
    busy = any(call.state in ACTIVE_STATES for call in verifying)
    can_act = user_can(request.user, CALL_ACTIONS)
    by_agent = order.decided_via == Order.DecidedVia.AGENT
    user = signed_in_user(request)
    return {
        "order": order,
        "calls": calls,
        "timeline": timeline(order, calls),
        "latest": latest,
        "busy": busy,
        "can_act": can_act,
        # Once the parcel is known to have left, decide_by_hand refuses: the page says why
        # instead of offering buttons that would be refused. Nor is it called again: a key
        # press could no longer change what was shipped.
        "can_call_again": can_act and not busy and not by_agent and not order.delivery,
        "can_decide": can_act and not busy and not order.delivery,
        # Marked by hand: delivered or returned, whichever the parcel is not already.
        "parcel_marks": [d for d in HAND_DELIVERIES if d != order.delivery],
        "overrides": whose_decision(order) if order.decision else "",
        "call_again_question": call_again_question(order.phone, order.store),
        "decisions": [(d.value, d.label) for d in Order.Decision if d.value],
        "mine": order.claimed_by_id == user.pk,
        # Another agent holds the order's follow-up: take it over before working it.
        "held_by_other": bool(order.followup and order.claimed_by_id not in (None, user.pk)),
        # The order's phone on its store's block list (why, who, when), or None.
        "blocked_phone": BlockedPhone.objects.filter(store_id=order.store_id, phone=order.phone)
        .select_related("created_by")
        .first(),
        # What the shops were told (shops' outbox); a handful per order.
        "write_backs": list(order.write_backs.select_related("connection").order_by("id")[:20]),
        # Later orders from the same phone that came while this one was undecided
        # (order_duplicate_of_idx); the order's own link is order.duplicate_of.
        "duplicates": list(
            order.possible_duplicates.only("pk", "order_id").order_by("id")[:DUPLICATES_LIMIT]
        ),
        **callback_bounds(order),
        **extra,
    }


def render_order_panel(request: HttpRequest, order: Order, **extra: Any) -> str:
    """The order page's panel (decision, follow-up and actions), as an action answers htmx."""
    order = get_order(order.pk)
    html = render_to_string(
        "orders/order_detail.html#order-panel",
        order_context(request, order, **extra),
        request=request,
    )
    # The number in the page's heading follows a corrected phone.
    return html + render_to_string(
        "orders/_phone_link.html", {"order": order, "oob": True}, request=request
    )


def order_page(request: HttpRequest, order: Order, **extra: Any) -> HttpResponse:
    order = get_order(order.pk)
    return render(request, "orders/order_detail.html", order_context(request, order, **extra))
