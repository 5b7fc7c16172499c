"""An order's page: what the shop sent, its decision and who made it, every call with its
timeline, and the actions (call again, decide by hand)."""

from __future__ import annotations

import re
from typing import Any

from django.contrib import messages
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from calls.models import Call, CallEvent, Order
from calls.permissions import CALL_ACTIONS, EVERYONE, role_required, user_can
from calls.pipeline.balances import call_again_question
from calls.transitions import ACTIVE_STATES, TransitionRefused, decide_by_hand
from calls.views import HtmxHttpRequest, redirect_to_next, signed_in_user
from calls.views.followups import render_followup_row

# An order gathers a handful of calls (the first, a few call-agains and re-attempts); these
# are ceilings that keep the page bounded whatever happens.
CALLS_LIMIT = 50
EVENTS_PER_CALL_LIMIT = 200


def _get_order(pk: int) -> Order:
    return get_object_or_404(Order.objects.select_related("store", "campaign", "decided_by"), pk=pk)


def order_context(request: HttpRequest, order: Order) -> dict[str, Any]:
    calls = list(
        order.calls.select_related("campaign", "assigned_to", "handled_by")
        .prefetch_related(
            Prefetch(
                "events",
                queryset=CallEvent.objects.select_related("actor").order_by("at", "id"),
            )
        )
        .order_by("created_at", "id")[:CALLS_LIMIT]
    )
    latest = calls[-1] if calls else None
    busy = any(call.state in ACTIVE_STATES for call in calls)
    can_act = user_can(request.user, CALL_ACTIONS)
    decided_by_hand = order.decided_by_id is not None
    return {
        "order": order,
        "calls": [(call, list(call.events.all())[:EVENTS_PER_CALL_LIMIT]) for call in calls],
        "latest": latest,
        "busy": busy,
        "can_act": can_act,
        "can_call_again": can_act and latest is not None and not busy and not decided_by_hand,
        "can_decide": can_act and not busy and not decided_by_hand,
        "call_again_question": call_again_question(order.phone, order.store),
        "decisions": [(d.value, d.label) for d in Order.Decision if d.value],
        # What the shops were told (shops' outbox), newest last; a handful per order.
        "write_backs": list(order.write_backs.select_related("connection").order_by("id")[:20]),
    }


@role_required(EVERYONE)
@require_GET
def order_detail(request: HttpRequest, pk: int) -> HttpResponse:
    order = _get_order(pk)
    return render(request, "orders/order_detail.html", order_context(request, order))


@role_required(CALL_ACTIONS)
@require_POST
def order_decide(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """An agent's decision by hand (confirmed or cancelled, with a note): final."""
    order = _get_order(pk)
    decision = request.POST.get("decision", "")
    try:
        decide_by_hand(order, signed_in_user(request), decision, request.POST.get("note", ""))
    except TransitionRefused as refusal:
        messages.error(request, _("Not decided: %(reason)s") % {"reason": refusal})
    else:
        done = (
            _("Order %(order)s confirmed by hand.")
            if decision == Order.Decision.CONFIRMED
            else _("Order %(order)s cancelled by hand.")
        )
        messages.success(request, done % {"order": order.order_id})
    row = re.fullmatch(r"followup-(\d{1,18})", request.htmx.target or "") if request.htmx else None
    call = Call.objects.filter(pk=int(row[1]), shop_order=order).first() if row else None
    if call is not None:  # decided from its row in the follow-up queue: answer with the row
        html = render_followup_row(request, call)
        html += render_to_string("calls/_out_of_band.html", request=request)
        return HttpResponse(html)
    return redirect_to_next(request, reverse("order_detail", args=[pk]))
