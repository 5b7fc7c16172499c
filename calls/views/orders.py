"""An order's page: what the shop sent, its decision and who made it, its follow-up, one
timeline of what happened to it (its own events and its calls' events, merged), and the actions
(call again, decide by hand, the follow-up's claim and handled)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.contrib import messages
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from calls import actions, formatting
from calls.actions import ActionRefused
from calls.models import Call, CallEvent, Order, OrderEvent, User
from calls.permissions import CALL_ACTIONS, EVERYONE, role_required, user_can
from calls.pipeline.balances import call_again_question
from calls.transitions import ACTIVE_STATES, TransitionRefused, decide_by_hand, whose_decision
from calls.views import HtmxHttpRequest, redirect_to_next, signed_in_user
from calls.views.followups import render_followup_row

# An order gathers a handful of calls (the first, a few call-agains and re-attempts) and a few
# dozen events; these are ceilings that keep the page bounded whatever happens.
CALLS_LIMIT = 50
EVENTS_LIMIT = 500


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


def _get_order(pk: int) -> Order:
    return get_object_or_404(
        Order.objects.select_related("store", "campaign", "decided_by", "claimed_by"), pk=pk
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


def order_context(request: HttpRequest, order: Order) -> dict[str, Any]:
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
    latest = calls[-1] if calls else None
    busy = any(call.state in ACTIVE_STATES for call in calls)
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
        "can_call_again": can_act and not busy and not by_agent,
        "can_decide": can_act and not busy,
        "overrides": whose_decision(order) if order.decision else "",
        "call_again_question": call_again_question(order.phone, order.store),
        "decisions": [(d.value, d.label) for d in Order.Decision if d.value],
        "mine": order.claimed_by_id == user.pk,
        # What the shops were told (shops' outbox); a handful per order.
        "write_backs": list(order.write_backs.select_related("connection").order_by("id")[:20]),
    }


def render_order_panel(request: HttpRequest, order: Order) -> str:
    """The order page's panel (decision, follow-up and actions), as an action answers htmx."""
    order = _get_order(order.pk)
    return render_to_string(
        "orders/order_detail.html#order-panel", order_context(request, order), request=request
    )


@role_required(EVERYONE)
@require_GET
def order_detail(request: HttpRequest, pk: int) -> HttpResponse:
    order = _get_order(pk)
    return render(request, "orders/order_detail.html", order_context(request, order))


@role_required(CALL_ACTIONS)
@require_POST
def order_decide(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """A decision by hand (confirmed or cancelled, with a note). Changing a decision the order
    already has needs `replaces` (the decision the person saw) and a note."""
    order = _get_order(pk)
    decision = request.POST.get("decision", "")
    replaces = request.POST.get("replaces")
    try:
        decide_by_hand(
            order,
            signed_in_user(request),
            decision,
            request.POST.get("note", ""),
            replaces=replaces if replaces is not None else order.decision,
        )
    except TransitionRefused as refusal:
        messages.error(request, _("Not decided: %(reason)s") % {"reason": refusal})
    else:
        done = (
            _("Order %(order)s confirmed by hand: the shop is told it is confirmed.")
            if decision == Order.Decision.CONFIRMED
            else _("Order %(order)s cancelled by hand: the shop is told it is cancelled.")
        )
        messages.success(request, done % {"order": order.order_id})
    return answer_order_action(request, order)


@role_required(CALL_ACTIONS)
@require_POST
def order_call_again(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    order = _get_order(pk)
    try:
        child = actions.call_again(order, signed_in_user(request))
    except ActionRefused as refusal:
        messages.error(request, _("Not called again: %(reason)s") % {"reason": refusal})
    else:
        when = (
            _("now")
            if child.scheduled_for <= timezone.now()
            else formatting.when(child.scheduled_for, order.store)
        )
        messages.success(
            request,
            _("Calling %(phone)s again for order %(order)s: call #%(call)s is queued (%(when)s).")
            % {
                "phone": formatting.phone(order.phone),
                "order": order.order_id,
                "call": child.pk,
                "when": when,
            },
        )
    return answer_order_action(request, order)


# --- the follow-up actions on an order: answered in the queue's row or the order's panel -----


def answer_order_action(request: HtmxHttpRequest, order: Order) -> HttpResponse:
    """Back where an action on `order` came from: its queue row for htmx (with the flash
    messages and the follow-up count out of band), the order page's panel, else a redirect to
    the page named by `next`, or the order's page."""
    if request.htmx:
        target = request.htmx.target or ""
        if target.startswith("followup-"):
            html = render_followup_row(request, order)
        else:
            html = render_order_panel(request, order)
        html += render_to_string("calls/_out_of_band.html", request=request)
        return HttpResponse(html)
    return redirect_to_next(request, reverse("order_detail", args=[order.pk]))


@role_required(CALL_ACTIONS)
@require_POST
def followup_claim(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    order = _get_order(pk)
    if actions.claim(order, signed_in_user(request)):
        messages.success(request, _("Order %(order)s is yours to follow up.") % {"order": order})
    else:
        current = _get_order(pk)
        if not current.followup:
            messages.warning(request, _("Order %(order)s has left the queue.") % {"order": order})
        else:
            holder = current.claimed_by.username if current.claimed_by else _("someone else")
            messages.warning(
                request,
                _("Order %(order)s is already claimed by %(holder)s.")
                % {"order": order, "holder": holder},
            )
    return answer_order_action(request, order)


@role_required(CALL_ACTIONS)
@require_POST
def followup_release(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    order = _get_order(pk)
    if actions.release(order, signed_in_user(request)):
        messages.success(
            request, _("Order %(order)s released: anyone may claim it.") % {"order": order}
        )
    else:
        messages.warning(
            request,
            _("Order %(order)s was not claimed by you; nothing to release.") % {"order": order},
        )
    return answer_order_action(request, order)


@role_required(CALL_ACTIONS)
@require_POST
def followup_take_over(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    order = _get_order(pk)
    holder = order.claimed_by.username if order.claimed_by else None
    if actions.take_over(order, signed_in_user(request)):
        taken = (
            _("Order %(order)s taken over from %(holder)s.")
            if holder
            else _("Order %(order)s taken over.")
        )
        messages.success(request, taken % {"order": order, "holder": holder})
    else:
        messages.warning(request, _("Order %(order)s has left the queue.") % {"order": order})
    return answer_order_action(request, order)


@role_required(CALL_ACTIONS)
@require_POST
def followup_handled(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    order = _get_order(pk)
    try:
        won = actions.mark_handled(order, signed_in_user(request), request.POST.get("note", ""))
    except ActionRefused as refusal:
        messages.error(request, _("Not marked handled: %(reason)s") % {"reason": refusal})
    else:
        if won:
            messages.success(request, _("Order %(order)s marked handled.") % {"order": order})
        else:
            messages.warning(
                request,
                _("Order %(order)s had already left the queue (handled or decided).")
                % {"order": order},
            )
    return answer_order_action(request, order)
