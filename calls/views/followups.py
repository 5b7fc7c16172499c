"""The agents' queue of orders: one row per order in front of a person (a callback request,
unreachable or answered without a key after every attempt, a call that needs review, an order
that could not be called), due callbacks first, then the oldest. It refreshes itself. The
follow-up actions on an order (claim, release, take over, mark handled, the next order) answer
from here too."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db.models import Prefetch, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from calls import actions
from calls.actions import due_followups
from calls.models import Call, Order
from calls.permissions import CALL_ACTIONS, role_required
from calls.pipeline.balances import call_again_question
from calls.views import HtmxHttpRequest, signed_in_user
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
            ).order_by("created_at", "id"),
        )
    )


def row_context(order: Order) -> dict[str, Any]:
    order_calls = list(order.calls.all())
    return {
        "order": order,
        "order_calls": order_calls,
        "latest": order_calls[-1] if order_calls else None,
        "call_again_question": call_again_question(order.phone, order.store),
    }


def render_followup_row(request: HttpRequest, order: Order) -> str:
    """The queue's row for `order`, as an action answers an htmx request from that row."""
    order = _with_calls(Order.objects.filter(pk=order.pk)).get()
    return render_to_string("followups/_followup_row.html", row_context(order), request=request)


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


# --- the next order ------------------------------------------------------------------------


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
