"""The agents' queue of orders: one row per order in front of a person (a callback request,
unreachable or answered without a key after every attempt, a call that needs review, an order
that could not be called), due callbacks first, then the oldest. It refreshes itself. At 390 px
each row is a card that fits the phone's screen. The follow-up actions on an order (claim,
release, take over, mark handled, the next order, a callback time) answer from here too.

An agent lands here when signing in (robodash/sign_in.py): the queue is an agent's desk."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.db.models import Prefetch, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from calls import actions, formatting
from calls.actions import ActionRefused, due_followups
from calls.models import Call, Order, OrderEvent
from calls.permissions import CALL_ACTIONS, role_required
from calls.pipeline.balances import call_again_question
from calls.views import HtmxHttpRequest, redirect_to_next, signed_in_user
from calls.views.order_panel import order_page, render_order_panel
from calls.views.paging import Cursor

PAGE_SIZE = 25  # a queue is worked from the top; "older" pages the rest
WHO_CHOICES = (
    ("all", gettext_lazy("Everyone's")),
    ("mine", gettext_lazy("Claimed by me")),
    ("unclaimed", gettext_lazy("Unclaimed")),
)


def open_followups() -> QuerySet[Order]:
    """The orders in the queue and due now (calls.actions.due_followups): the predicate of
    order_followup_queue_idx, so the queue and its count use it."""
    return due_followups()


def _after(orders: QuerySet[Order], cursor: Cursor, callback_first: bool) -> QuerySet[Order]:
    """The rows after a (callback_set, followup_at, id) cursor in queue order."""
    later = Q(followup_at__gt=cursor.at) | Q(followup_at=cursor.at, id__gt=cursor.pk)
    if callback_first:
        return orders.filter((Q(callback_set=True) & later) | Q(callback_set=False))
    return orders.filter(later, callback_set=False)


def _with_calls(orders: QuerySet[Order]) -> QuerySet[Order]:
    # One query for the orders and one for all their calls, so a row shows the order's calls.
    return orders.select_related("store", "campaign", "claimed_by", "decided_by").prefetch_related(
        Prefetch(
            "calls",
            queryset=Call.objects.only(
                "id",
                "shop_order_id",
                "state",
                "outcome",
                "created_at",
                "finalized_at",
                "call_status",
                "dtmf",
                "review_reason",
                "store_id",
                "purpose",
            ).order_by("created_at", "id"),
        )
    )


def row_context(order: Order, **extra: Any) -> dict[str, Any]:
    order_calls = list(order.calls.all())
    # A notice call (calls/notices.py) is one of the order's calls, never its latest.
    verifying = [call for call in order_calls if call.purpose == Call.Purpose.VERIFY]
    latest = verifying[-1] if verifying else None
    return {
        "order": order,
        "row_id": f"followup-{order.pk}",
        "order_calls": order_calls,
        "latest": latest,
        "busy": latest is not None and not latest.is_final,
        "call_again_question": call_again_question(order.phone, order.store),
        **extra,
    }


def render_followup_row(request: HttpRequest, order: Order, **extra: Any) -> str:
    """The queue's row for `order`, as an action answers an htmx request from that row."""
    order = _with_calls(Order.objects.filter(pk=order.pk)).get()
    return render_to_string(
        "followups/_followup_row.html", row_context(order, **extra), request=request
    )


@role_required(CALL_ACTIONS)
@require_GET
def followup_list(request: HtmxHttpRequest) -> HttpResponse:
    orders = open_followups()
    reason = request.GET.get("reason", "")
    if reason in Order.FollowUp.values and reason:
        orders = orders.filter(followup=reason)
    else:
        reason = ""
    who = request.GET.get("who", "all")
    if who == "mine":
        orders = orders.filter(claimed_by=signed_in_user(request))
    elif who == "unclaimed":
        orders = orders.filter(claimed_by__isnull=True)
    else:
        who = "all"

    after = request.GET.get("after", "")
    callback_first = request.GET.get("cb", "") == "1"
    cursor = Cursor.decode(after) if after else None
    bad_cursor = bool(after) and cursor is None
    if cursor is not None:
        orders = _after(orders, cursor, callback_first)

    rows = list(_with_calls(orders)[: PAGE_SIZE + 1])
    has_more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    filters = request.GET.copy()
    for name in ("after", "cb"):
        filters.pop(name, None)
    next_query = None
    if has_more:
        query = filters.copy()
        query["after"] = Cursor.of(rows[-1], "followup_at").encode()
        if rows[-1].callback_set:
            query["cb"] = "1"
        next_query = query.urlencode()

    context = {
        "rows": [row_context(order) for order in rows],
        "reason": reason,
        "who": who,
        "reason_choices": [(v, label) for v, label in Order.FollowUp.choices if v],
        "who_choices": WHO_CHOICES,
        "next_query": next_query,
        "first_query": filters.urlencode(),
        "paged": bool(after) and not bad_cursor,
        "bad_cursor": bad_cursor,
    }
    template = "followups/followup_list.html"
    if request.htmx and not request.htmx.history_restore_request:
        template += "#followup-results"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


# --- the follow-up actions on an order ------------------------------------------------------


def _get_order(pk: int) -> Order:
    return get_object_or_404(Order.objects.select_related("store", "claimed_by"), pk=pk)


def answer_order_action(request: HtmxHttpRequest, order: Order, **extra: Any) -> HttpResponse:
    """Back where an action on `order` came from: its queue row for htmx (with the flash
    messages and the follow-up count out of band), the order page's panel, else a redirect to
    the page named by `next`, or the order's page. `extra` reaches the row's or the panel's
    template (a question the action asks before it acts: `question`); without htmx a question
    is asked on the order's page."""
    if request.htmx:
        target = request.htmx.target or ""
        if target.startswith("followup-"):
            html = render_followup_row(request, order, **extra)
        else:
            html = render_order_panel(request, order, **extra)
        html += render_to_string("calls/_out_of_band.html", request=request)
        return HttpResponse(html)
    if extra:
        return order_page(request, order, **extra)
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
            messages.warning(request, _already_out_of_the_queue(order))
    return answer_order_action(request, order)


def _already_out_of_the_queue(order: Order) -> str:
    """Why there was nothing to mark handled: who took the order out of the queue, when, and
    their note, so the second agent reads the first one's work rather than redoing it."""
    closing = (
        order.events.filter(kind__in=(OrderEvent.Kind.HANDLED, OrderEvent.Kind.FOLLOWUP_CLOSED))
        .select_related("actor")
        .order_by("-at", "-id")
        .first()
    )
    if closing is not None and closing.kind == OrderEvent.Kind.HANDLED and closing.actor:
        return _(
            "Order %(order)s was already marked handled by %(name)s on %(when)s: “%(note)s”"
        ) % {
            "order": order.order_id,
            "name": closing.actor.username,
            "when": formatting.when(closing.at, order.store),
            "note": closing.data.get("note", ""),
        }
    return _("Order %(order)s had already left the queue (handled or decided).") % {
        "order": order.order_id
    }


def read_callback_time(text: str, order: Order) -> dt.datetime | None:
    """A datetime-local value ("2026-12-07T17:30") as a moment in the store's zone; None when
    it is not one."""
    try:
        moment = dt.datetime.fromisoformat(text.strip())
        if moment.tzinfo is None:
            moment = timezone.make_aware(moment, order.store.zone)
        # In UTC here, so a moment at the very edge of the calendar (year 1 at +14:00) is
        # refused now rather than overflowing where it is worded.
        return moment.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        return None


@role_required(CALL_ACTIONS)
@require_POST
def followup_callback(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The customer asked to be called at a time: the order waits out of the queue until then."""
    order = _get_order(pk)
    at = read_callback_time(request.POST.get("callback_at", ""), order)
    if at is None:
        messages.error(
            request,
            _("No callback set: give a day and a time, e.g. %(example)s.")
            % {"example": f"{timezone.now().astimezone(order.store.zone):%Y-%m-%d} 17:30"},
        )
        return answer_order_action(request, order)
    try:
        actions.set_callback(order, signed_in_user(request), at)
    except ActionRefused as refusal:
        messages.error(request, _("No callback set: %(reason)s") % {"reason": refusal})
    else:
        messages.success(
            request,
            _(
                "Order %(order)s waits out of the queue until %(at)s, then comes back at its "
                "top for whoever is on duty."
            )
            % {"order": order.order_id, "at": formatting.when(at, order.store)},
        )
    return answer_order_action(request, order)


@role_required(CALL_ACTIONS)
@require_POST
def followup_next(request: HttpRequest) -> HttpResponse:
    """ "Next order": claim the oldest unclaimed follow-up and open it."""
    order = actions.next_order(signed_in_user(request))
    if order is None:
        messages.info(request, _("Nothing left to claim: every due follow-up has an agent."))
        return redirect("followup_list")
    messages.success(request, _("Order %(order)s is yours to follow up.") % {"order": order})
    return redirect("order_detail", order.pk)
