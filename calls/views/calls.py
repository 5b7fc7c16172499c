"""The Calls page, one call's page, its self-refreshing row, the CSV export and the call actions."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.db.models import Q, QuerySet
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
)
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseStopPolling

from calls import actions
from calls.forms import StoreDaysFilterForm
from calls.models import Call, Campaign, Order, Store
from calls.permissions import CALL_ACTIONS, EVERYONE, REPORTS, role_required, user_can
from calls.phones import mobile_search_prefix
from calls.pipeline.balances import call_again_question
from calls.views import HtmxHttpRequest, redirect_to_next, signed_in_user
from calls.views.orders import call_again_saying_so
from calls.views.paging import Cursor, filters_without_page, newest_first_page, page_links

PAGE_SIZE = 50
# The campaign filter lists the most recent campaigns; older ones are still reachable by link.
CAMPAIGN_CHOICES_LIMIT = 200
# A call's timeline: a call that lives for hours gathers a few dozen events; this is a ceiling.
TIMELINE_LIMIT = 500
FAMILY_LIMIT = 50
ORDER_MATCHES_LIMIT = 10  # one order id in a few stores at most

# The provider's call_status values (robocall-api.txt, "Call Status Definitions").
CALL_STATUS_MEANINGS = {
    1: _lazy("Initiated: pushed from SIP, ringing, awaiting pickup"),
    2: _lazy("Answered"),
    3: _lazy("Congestion: no answer due to network congestion"),
    4: _lazy("Busy: the line was busy"),
    5: _lazy("No answer: kept ringing, never picked up"),
    6: _lazy("Hangup: disconnected prematurely"),
    8: _lazy("Pushed to SIP: not yet initiated"),
}
DTMF_MEANINGS = {
    1: _lazy("Pressed 1: confirmed the order"),
    2: _lazy("Pressed 2: cancelled the order"),
    3: _lazy("Pressed 3: asked for a callback"),
}

# --- helpers shared by the views -----------------------------------------------------------


def _calls_with_relations() -> QuerySet[Call]:
    return Call.objects.select_related("store", "campaign", "shop_order")


def _get_call(pk: int) -> Call:
    return get_object_or_404(_calls_with_relations(), pk=pk)


# --- the Calls page ------------------------------------------------------------------------


class CallFilterForm(StoreDaysFilterForm):
    campaign = forms.ModelChoiceField(queryset=Campaign.objects.all(), required=False)
    state = forms.ChoiceField(
        choices=[("", _lazy("Any state")), *Call.State.choices], required=False
    )
    outcome = forms.ChoiceField(
        choices=[("", _lazy("Any outcome")), *Call.Outcome.choices], required=False
    )
    q = forms.CharField(
        required=False, max_length=100, strip=True, label=_lazy("Phone or order id")
    )

    def apply(self, calls: QuerySet[Call]) -> QuerySet[Call]:
        """`calls` narrowed by every valid field; invalid fields are shown and ignored."""
        data = self.cleaned_data if self.is_bound else {}
        calls = self.within_store_and_days(calls)
        if data.get("campaign"):
            calls = calls.filter(campaign=data["campaign"])
        if data.get("state"):
            calls = calls.filter(state=data["state"])
        if data.get("outcome"):
            calls = calls.filter(outcome=data["outcome"])
        query = data.get("q")
        if query:
            # Prefix matches on both indexed columns: LIKE 'x%' uses call_phone_idx and
            # call_order_id_idx through their varchar_pattern_ops operator class.
            match = Q(order_id__startswith=query)
            prefix = mobile_search_prefix(query)
            if prefix:
                match |= Q(phone__startswith=prefix)
            calls = calls.filter(match)
        return calls


def filtered_calls(
    request: HttpRequest, calls: QuerySet[Call]
) -> tuple[CallFilterForm, QuerySet[Call]]:
    form = CallFilterForm(request.GET)
    form.is_valid()  # fills cleaned_data with the valid fields and errors for the others
    return form, form.apply(calls)


def _campaign_choices(
    chosen_store: Store | None, chosen_campaign: Campaign | None
) -> list[Campaign]:
    """The campaign filter's choices: the latest of the chosen store's, and the one chosen."""
    campaigns = Campaign.objects.select_related("store").order_by("-created_at", "-id")
    if chosen_store is not None:
        campaigns = campaigns.filter(store=chosen_store)
    choices = list(campaigns[:CAMPAIGN_CHOICES_LIMIT])
    if chosen_campaign is not None and chosen_campaign not in choices:
        choices.insert(0, chosen_campaign)
    return choices


def _orders_matching(query: str, chosen_store: Store | None) -> list[Order]:
    """A search by order id finds the order itself (order_order_id_idx serves the equality)."""
    if not query:
        return []
    orders = Order.objects.filter(order_id=query).select_related("store")
    if chosen_store is not None:
        orders = orders.filter(store=chosen_store)
    return list(orders.order_by("store__name")[:ORDER_MATCHES_LIMIT])


@role_required(EVERYONE)
@require_GET
def call_list(request: HtmxHttpRequest) -> HttpResponse:
    form, calls = filtered_calls(request, _calls_with_relations())
    before = Cursor.decode(request.GET.get("before", ""))
    after = None if before else Cursor.decode(request.GET.get("after", ""))
    bad_cursor = bool(request.GET.get("before") or request.GET.get("after")) and not (
        before or after
    )
    # call_created_idx (or the per-store and per-outcome indexes) walked from the cursor.
    rows, has_more = newest_first_page(calls, "created_at", PAGE_SIZE, before, after)
    filters = filters_without_page(request)
    newer_query, older_query = page_links(filters, rows, "created_at", has_more, before, after)
    chosen_store = form.cleaned_data.get("store")
    campaign_choices = _campaign_choices(chosen_store, form.cleaned_data.get("campaign"))
    matching_orders = _orders_matching(form.cleaned_data.get("q") or "", chosen_store)

    context = {
        "form": form,
        "rows": rows,
        "matching_orders": matching_orders,
        "paged": before is not None or after is not None,
        "bad_cursor": bad_cursor,
        "newer_query": newer_query,
        "older_query": older_query,
        "filter_query": filters.urlencode(),
        "filtering": any(value for value in filters.values()),
        "stores": Store.objects.order_by("name"),
        "campaign_choices": campaign_choices,
        "states": Call.State.choices,
        "outcomes": Call.Outcome.choices,
        "zone_name": form.zone().key,
        "can_export": user_can(request.user, REPORTS),
    }
    template = "calls/call_list.html"
    if request.htmx and not request.htmx.history_restore_request:
        template += "#call-results"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])  # the same URL answers with a page or a fragment
    return response


@role_required(REPORTS)
@require_GET
def call_export(request: HttpRequest, as_xlsx: bool = False) -> HttpResponseBase:
    """The filtered calls as CSV (calls/export.csv) or Excel (calls/export.xlsx)."""
    from calls.exports import (
        calls_rows,
        csv_response,
        export_filename,
        export_refused,
        xlsx_response,
    )

    # The export picks its own columns and joins.
    form, calls = filtered_calls(request, Call.objects.all())
    if form.errors:
        return export_refused(form)
    filename = export_filename("calls", **form.export_naming())
    rows = calls_rows(calls.order_by("-created_at", "-id"))
    if as_xlsx:
        return xlsx_response(rows, f"{filename}.xlsx", title="Calls")
    return csv_response(rows, f"{filename}.csv")


@role_required(EVERYONE)
@require_GET
def call_row(request: HttpRequest, pk: int) -> HttpResponse:
    """The call's row of the Calls table, polled by the row itself while the call is in
    flight. 286 (stop polling) once final: the row is swapped in one last time and stops."""
    call = _get_call(pk)
    html = render_to_string("calls/_call_row.html", {"call": call}, request=request)
    if call.is_final:
        return HttpResponseStopPolling(html)
    return HttpResponse(html)


# --- one call's page -----------------------------------------------------------------------


def _call_page_context(request: HttpRequest, call: Call) -> dict[str, Any]:
    # The order's calls (call_order_created_idx): the first, its call-agains and re-attempts.
    family = list(
        Call.objects.filter(shop_order_id=call.shop_order_id).order_by("created_at", "id")[
            :FAMILY_LIMIT
        ]
    )
    events = list(call.events.select_related("actor").order_by("at", "id")[: TIMELINE_LIMIT + 1])
    can_act = user_can(request.user, CALL_ACTIONS)
    # A notice call in flight (calls/notices.py) does not hold up calling the order again.
    family_busy = any(
        member.state in actions.ACTIVE_STATES and member.purpose == Call.Purpose.VERIFY
        for member in family
    )
    return {
        "call": call,
        "family": family if len(family) > 1 else [],
        "events": events[:TIMELINE_LIMIT],
        "timeline_cut": len(events) > TIMELINE_LIMIT,
        "call_status_meaning": CALL_STATUS_MEANINGS.get(call.call_status)
        if call.call_status is not None
        else None,
        "dtmf_meaning": DTMF_MEANINGS.get(call.dtmf) if call.dtmf is not None else None,
        "order": call.shop_order,
        "can_act": can_act,
        "can_call_again": can_act
        and not family_busy
        and call.shop_order.decided_via != Order.DecidedVia.AGENT,
        "call_again_question": call_again_question(call.phone, call.store),
        "family_busy": family_busy,
        "can_withdraw": can_act and call.state == Call.State.QUEUED,
    }


@role_required(EVERYONE)
@require_GET
def call_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    call = _get_call(pk)
    context = _call_page_context(request, call)
    if request.htmx and not request.htmx.history_restore_request:
        # The page's main panel polls itself while the call is in flight.
        html = render_to_string("calls/call_detail.html#call-main", context, request=request)
        return HttpResponseStopPolling(html) if call.is_final else HttpResponse(html)
    response = render(request, "calls/call_detail.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response


# --- actions -------------------------------------------------------------------------------


def _after_action(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Back where the action came from: the call panel for htmx (with the flash messages and
    the follow-up count swapped out of band), else a redirect to the page named by `next`, or
    the call's page."""
    if request.htmx:
        call = _get_call(pk)
        html = render_to_string(
            "calls/call_detail.html#call-main", _call_page_context(request, call), request=request
        )
        html += render_to_string("calls/_out_of_band.html", request=request)
        return HttpResponse(html)
    return redirect_to_next(request, reverse("call_detail", args=[pk]))


@role_required(CALL_ACTIONS)
@require_POST
def call_again(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    call_again_saying_so(request, _get_call(pk).shop_order)
    return _after_action(request, pk)


@role_required(CALL_ACTIONS)
@require_POST
def call_withdraw(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    call = _get_call(pk)
    if actions.withdraw(call, signed_in_user(request)):
        messages.success(request, _("Call #%(pk)s withdrawn: it will not be placed.") % {"pk": pk})
    else:
        current = _get_call(pk)
        if current.is_final:
            messages.error(
                request,
                _("Call #%(pk)s is already final (%(outcome)s); there is nothing to withdraw.")
                % {"pk": pk, "outcome": current.get_outcome_display()},
            )
        else:
            messages.error(
                request,
                _(
                    "Too late to withdraw call #%(pk)s: the dispatcher has already claimed it "
                    "(now %(state)s)."
                )
                % {"pk": pk, "state": current.get_state_display().lower()},
            )
    return _after_action(request, pk)
