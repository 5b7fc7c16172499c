"""The agents' queue of orders: one row per order whose latest outcome asks for a person (a
callback request, unreachable, needs review) and is not handled yet, oldest first. The row is
the order's latest such call; a call again still in flight shows on it. It refreshes itself."""

from __future__ import annotations

from typing import Any

from django.db.models import F, Prefetch, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from calls.models import Call
from calls.permissions import CALL_ACTIONS, role_required
from calls.pipeline.balances import call_again_question
from calls.views import HtmxHttpRequest, signed_in_user
from calls.views.paging import Cursor

PAGE_SIZE = 25  # a queue is worked from the top; "older" pages the rest
WHO_CHOICES = (
    ("all", _("Everyone's")),
    ("mine", _("Claimed by me")),
    ("unclaimed", _("Unclaimed")),
)


def open_followups() -> QuerySet[Call]:
    """The open follow-ups: one call per order, as a call that ends with an outcome closes the
    earlier follow-ups of its order (calls/transitions.py). Exactly the predicate of
    call_open_followup_idx, so the queue and its count use it."""
    return Call.objects.filter(outcome__in=Call.FOLLOW_UP_OUTCOMES, handled_at__isnull=True)


def _queue_order(calls: QuerySet[Call]) -> QuerySet[Call]:
    # NULLS LAST is Postgres's own order for ASC, the order of the partial index.
    return calls.order_by(F("finalized_at").asc(nulls_last=True), "id")


def _after(calls: QuerySet[Call], cursor: Cursor) -> QuerySet[Call]:
    """The rows after a (finalized_at, id) cursor in queue order (unset moments last)."""
    if cursor.at is None:
        return calls.filter(finalized_at__isnull=True, id__gt=cursor.pk)
    return calls.filter(
        Q(finalized_at__gt=cursor.at)
        | Q(finalized_at=cursor.at, id__gt=cursor.pk)
        | Q(finalized_at__isnull=True)
    )


def _with_order_calls(calls: QuerySet[Call]) -> QuerySet[Call]:
    # One query for the orders and one for all their calls, so a row shows the order's calls.
    return calls.select_related(
        "store", "campaign", "assigned_to", "handled_by", "shop_order", "shop_order__decided_by"
    ).prefetch_related(
        Prefetch(
            "shop_order__calls",
            queryset=Call.objects.only(
                "id", "shop_order_id", "state", "outcome", "created_at", "call_status", "dtmf"
            ).order_by("created_at", "id"),
        )
    )


def _row_context(call: Call) -> dict[str, Any]:
    order_calls = list(call.shop_order.calls.all())
    later = [c for c in order_calls if c.pk > call.pk]
    return {
        "call": call,
        "order": call.shop_order,
        "order_calls": order_calls,
        "latest_callback": later[-1] if later else None,
        "call_again_question": call_again_question(call.phone, call.store),
    }


def render_followup_row(request: HttpRequest, call: Call) -> str:
    """The queue's row for `call`, as an action answers an htmx request from that row."""
    call = _with_order_calls(Call.objects.filter(pk=call.pk)).get()
    return render_to_string("followups/_followup_row.html", _row_context(call), request=request)


@role_required(CALL_ACTIONS)
@require_GET
def followup_list(request: HtmxHttpRequest) -> HttpResponse:
    calls = open_followups()
    outcome = request.GET.get("outcome", "")
    if outcome in Call.FOLLOW_UP_OUTCOMES:
        calls = calls.filter(outcome=outcome)
    else:
        outcome = ""
    who = request.GET.get("who", "all")
    if who == "mine":
        calls = calls.filter(assigned_to=signed_in_user(request))
    elif who == "unclaimed":
        calls = calls.filter(assigned_to__isnull=True)
    else:
        who = "all"

    after = request.GET.get("after", "")
    cursor = Cursor.decode(after, unset=True) if after else None
    bad_cursor = bool(after) and cursor is None
    if cursor is not None:
        calls = _after(calls, cursor)

    rows = list(_with_order_calls(_queue_order(calls))[: PAGE_SIZE + 1])
    has_more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    filters = request.GET.copy()
    filters.pop("after", None)
    next_query = None
    if has_more:
        query = filters.copy()
        query["after"] = Cursor.of(rows[-1], "finalized_at").encode()
        next_query = query.urlencode()

    context = {
        "rows": [_row_context(call) for call in rows],
        "outcome": outcome,
        "who": who,
        "outcome_choices": [
            (value, label)
            for value, label in Call.Outcome.choices
            if value in Call.FOLLOW_UP_OUTCOMES
        ],
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
