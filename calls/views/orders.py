"""An order's page: what the shop sent, its decision and who made it, its follow-up, one
timeline of what happened to it (its own events and its calls' events, merged), and the actions
(call again, decide by hand, correct the phone, the follow-up's claim, callback and handled,
mark the parcel delivered or returned).

Changing a decision the order already has is deliberate: the first press asks (saying whose
decision it overrides and what the shop will be told) and wants a note; the answer decides."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from calls import actions, formatting
from calls.actions import ActionRefused
from calls.block_list import BlockRefused, block_phone, unblock_phone
from calls.forms import BlockPhoneForm
from calls.models import Order
from calls.permissions import CALL_ACTIONS, EVERYONE, role_required
from calls.phones import InvalidPhone
from calls.transitions import (
    DeliveryVerdict,
    TransitionRefused,
    decide_by_hand,
    record_delivery,
    whose_decision,
)
from calls.views import HtmxHttpRequest, signed_in_user
from calls.views.followups import answer_order_action
from calls.views.order_panel import HAND_DELIVERIES, get_order, order_page

DECISIONS = (Order.Decision.CONFIRMED, Order.Decision.CANCELLED)


@role_required(EVERYONE)
@require_GET
def order_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return order_page(request, get_order(pk))


@dataclass
class DecisionQuestion:
    """What the agent is asked before a decision replaces the one the order has."""

    decision: str  # the one asked for
    replaces: str  # the one the order has, as the question shows it
    whose: str  # whose decision that is, in words (transitions.whose_decision)
    note: str  # what the agent typed so far


def decision_question(order: Order, decision: str, note: str) -> DecisionQuestion:
    return DecisionQuestion(decision, order.decision, whose_decision(order), note.strip())


@role_required(CALL_ACTIONS)
@require_POST
def order_decide(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """A decision by hand (confirmed or cancelled, with a note), from the order's page or its
    queue row. An order that already has a decision is not changed by the first press: the
    answer asks (whose decision it overrides, what the shop will be told, a note); the answer
    to that (`override`, with `replaces`: the decision the question showed) decides, or
    `keep` leaves it as it is."""
    order = get_order(pk)
    decision = request.POST.get("decision", "")
    note = request.POST.get("note", "")
    if request.POST.get("keep"):
        messages.info(
            request, _("Order %(order)s: the decision stays as it was.") % {"order": order.order_id}
        )
        return answer_order_action(request, order)
    overriding = request.POST.get("override") == "1"
    if order.decision and not overriding and decision in DECISIONS:
        # The first press on a decided order (or one decided since the page was drawn): ask.
        return answer_order_action(
            request, order, question=decision_question(order, decision, note)
        )
    if order.decision and overriding and not note.strip():
        messages.error(
            request,
            _("Not decided: say in the note why the decision changes: it overrides %(whose)s.")
            % {"whose": whose_decision(order)},
        )
        return answer_order_action(
            request, order, question=decision_question(order, decision, note)
        )
    try:
        decide_by_hand(
            order,
            signed_in_user(request),
            decision,
            note,
            replaces=request.POST.get("replaces", "") if overriding else "",
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


def call_again_saying_so(request: HttpRequest, order: Order) -> None:
    """Call the order again (calls.actions.call_again) and say how it went, in the page's
    messages: from the order's page, its queue row or one of its calls' pages."""
    try:
        child = actions.call_again(order, signed_in_user(request))
    except ActionRefused as refusal:
        messages.error(request, _("Not called again: %(reason)s") % {"reason": refusal})
        return
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


@role_required(CALL_ACTIONS)
@require_POST
def order_call_again(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    order = get_order(pk)
    call_again_saying_so(request, order)
    return answer_order_action(request, order)


@role_required(CALL_ACTIONS)
@require_POST
def order_phone(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Correct the order's phone; the old number stays in the timeline, the next call dials the
    new one."""
    order = get_order(pk)
    try:
        changed = actions.change_phone(
            order, signed_in_user(request), request.POST.get("phone", "")
        )
    except ActionRefused as refusal:
        messages.error(request, _("Phone not changed: %(reason)s") % {"reason": refusal})
    else:
        messages.success(
            request,
            _("Order %(order)s now has the number %(phone)s (was %(old)s); the next call dials it.")
            % {
                "order": order.order_id,
                "phone": formatting.phone(changed.phone),
                "old": formatting.phone(order.phone),
            },
        )
    return answer_order_action(request, order)


@role_required(CALL_ACTIONS)
@require_POST
def order_delivery(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The parcel marked delivered or returned by hand (an admin or an agent), through
    record_delivery like every other source; the answer says what became of it.

    Allowed whoever holds the order's follow-up: the hold (transitions.held_by_another) keeps
    one agent's judgement — a decision, a callback, "handled" — from being crossed by another's,
    but where the parcel is is a fact from the courier, not a judgement, and the timeline names
    who marked it. The first news that a parcel left closes the follow-up, claim and all."""
    order = get_order(pk)
    delivery = request.POST.get("delivery", "")
    if delivery not in HAND_DELIVERIES:
        refusal = _("Parcel not marked: mark it delivered or returned.")
        if delivery:
            refusal = _("Parcel not marked: mark it delivered or returned, not “%(value)s”.") % {
                "value": delivery[:40]
            }
        messages.error(request, refusal)
        return answer_order_action(request, order)
    verdict = record_delivery(
        order, delivery, via=Order.DeliveryVia.HAND, actor=signed_in_user(request)
    )
    words = {"order": order.order_id, "delivery": Order.Delivery(delivery).label.lower()}
    if verdict == DeliveryVerdict.APPLIED:
        messages.success(request, _("Order %(order)s marked %(delivery)s by hand.") % words)
    elif verdict == DeliveryVerdict.REPEAT:
        messages.info(
            request, _("Order %(order)s is already %(delivery)s; nothing changed.") % words
        )
    else:  # not by hand today (by hand, delivered and returned replace each other), but said
        messages.warning(
            request,
            _("Order %(order)s not marked %(delivery)s: %(why)s") % {**words, "why": verdict.label},
        )
    return answer_order_action(request, order)


@role_required(CALL_ACTIONS)
@require_POST
def order_block(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The order's phone put on its store's block list, with a reason: the phone's new orders
    are held for a person. This order is left as it is (an agent decides it here)."""
    order = get_order(pk)
    form = BlockPhoneForm(request.POST, ask_phone=False)
    if not form.is_valid():
        messages.error(request, _("Not blocked: say why, for whoever meets its next order."))
        return answer_order_action(request, order)
    try:
        block_phone(
            order.store, order.phone, form.cleaned_data["reason"], by=signed_in_user(request)
        )
    except (InvalidPhone, BlockRefused) as refusal:
        messages.error(request, _("Not blocked: %(reason)s") % {"reason": refusal})
    else:
        messages.success(
            request,
            _("%(phone)s is blocked at %(store)s: its new orders are held for a person.")
            % {"phone": formatting.phone(order.phone), "store": order.store.name},
        )
    return answer_order_action(request, order)


@role_required(CALL_ACTIONS)
@require_POST
def order_unblock(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    order = get_order(pk)
    words = {"phone": formatting.phone(order.phone), "store": order.store.name}
    if unblock_phone(order.store, order.phone):
        messages.success(
            request,
            _("%(phone)s is unblocked at %(store)s; orders it already has stay held.") % words,
        )
    else:
        messages.info(request, _("%(phone)s was not blocked at %(store)s.") % words)
    return answer_order_action(request, order)
