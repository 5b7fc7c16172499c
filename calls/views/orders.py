"""The Orders page (one row per order, filtered, searched, exported) and an order's page: what
the shop sent, its decision and who made it, its follow-up, one timeline of what happened to it
(its own events and its calls' events, merged), and the actions (call again, decide by hand,
the follow-up's claim and handled)."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import product
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.db.models import Count, Prefetch, Q, QuerySet, Sum
from django.http import HttpRequest, HttpResponse, QueryDict
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.http import require_GET, require_POST

from calls import actions, formatting
from calls.actions import ActionRefused
from calls.exports import (
    csv_response,
    export_filename,
    export_refused,
    orders_rows,
    xlsx_response,
)
from calls.forms import BoundedDateField
from calls.models import Call, CallEvent, Order, OrderEvent, Store, User
from calls.permissions import CALL_ACTIONS, EVERYONE, REPORTS, role_required, user_can
from calls.phones import mobile_search_prefix
from calls.pipeline.balances import call_again_question
from calls.transitions import ACTIVE_STATES, TransitionRefused, decide_by_hand, whose_decision
from calls.views import HtmxHttpRequest, redirect_to_next, signed_in_user
from calls.views.followups import render_followup_row
from calls.views.paging import Cursor, filters_without_page, newest_first_page, page_links
from calls.views.reports import Preset, presets

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


# --- the Orders page ------------------------------------------------------------------------

PAGE_SIZE = 50
# Shorter than a trigram, a part of an id would match most orders and no index could find it
# (pg_trgm reads three characters at a time): one or two characters find the id itself.
SHORTEST_PART = 3
# The one-click views: (key, the filter it sets). "Ready to ship" is the orders confirmed;
# "needs a decision" the orders in the agents' follow-up queue.
VIEWS = (("ready", {"decision": "confirmed"}), ("needs-decision", {"followup": "open"}))


class OrderFilterForm(forms.Form):
    DECISIONS = (
        ("", _lazy("Any decision")),
        ("confirmed", _lazy("Confirmed")),
        ("cancelled", _lazy("Cancelled")),
        ("none", _lazy("No decision yet")),
    )
    FOLLOWUPS = (
        ("", _lazy("Any")),
        ("open", _lazy("Needs a decision")),
        *[(code, label) for code, label in Order.FollowUp.choices if code],
    )

    q = forms.CharField(
        required=False, max_length=100, strip=True, label=_lazy("Order id or phone")
    )
    store = forms.ModelChoiceField(
        queryset=Store.objects.all(), required=False, label=_lazy("Store")
    )
    status = forms.ChoiceField(
        choices=[("", _lazy("Any status")), *Order.Status.choices],
        required=False,
        label=_lazy("Status"),
    )
    decision = forms.ChoiceField(choices=DECISIONS, required=False, label=_lazy("Decision"))
    followup = forms.ChoiceField(choices=FOLLOWUPS, required=False, label=_lazy("Follow-up"))
    source = forms.ChoiceField(
        choices=[("", _lazy("Any source")), *Order.Source.choices],
        required=False,
        label=_lazy("Source"),
    )
    date_from = BoundedDateField(required=False, label=_lazy("From"))
    date_to = BoundedDateField(required=False, label=_lazy("To"))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", _("The end date is before the start date."))
        return cleaned

    def zone(self) -> zoneinfo.ZoneInfo:
        """Dates are days in the chosen store's zone, or the default store zone."""
        store = self.cleaned_data.get("store") if self.is_valid() else None
        if store is not None:
            return store.zone
        return zoneinfo.ZoneInfo(settings.ROBODASH_DEFAULT_STORE_TIMEZONE)

    def apply(self, orders: QuerySet[Order]) -> QuerySet[Order]:
        """`orders` narrowed by every valid field; invalid fields are shown and ignored."""
        data = self.cleaned_data if self.is_bound else {}
        if data.get("store"):
            orders = orders.filter(store=data["store"])
        if data.get("status"):
            orders = orders.filter(status=data["status"])
        if data.get("decision"):
            orders = orders.filter(decision="" if data["decision"] == "none" else data["decision"])
        if data.get("followup") == "open":
            # In the agents' queue, for any reason, due or waiting for its callback time
            # (order_followup_queue_idx has exactly these rows).
            orders = orders.exclude(followup=Order.FollowUp.NONE)
        elif data.get("followup"):
            orders = orders.filter(followup=data["followup"])
        if data.get("source"):
            orders = orders.filter(source=data["source"])
        zone = self.zone()
        if data.get("date_from"):
            start = dt.datetime.combine(data["date_from"], dt.time.min, tzinfo=zone)
            orders = orders.filter(created_at__gte=start)
        if data.get("date_to"):
            next_day = data["date_to"] + dt.timedelta(days=1)
            orders = orders.filter(created_at__lt=dt.datetime.combine(next_day, dt.time.min, zone))
        if data.get("q"):
            orders = orders.filter(order_search(data["q"]))
        return orders


def order_search(text: str) -> Q:
    """Orders whose id holds `text` (any part, any case, a leading "#" optional), or whose phone
    starts with the mobile `text` is the start of ("0300 12", "+92 300-12", "30012").

    A part of three or more characters: UPPER(order_id) LIKE '%TEXT%', which order_id_trgm_idx
    (pg_trgm) answers from the trigrams of the part, whichever its place in the id; the planner
    walks order_created_idx instead when the part is common (the index's statistics, raised in
    its migration, say how common). Shorter: the id itself in any case, with or without its
    "#", a handful of values order_order_id_idx finds (trigrams would match every id that
    starts with the part). The phone: order_phone_idx, a prefix."""
    part = text.strip().lstrip("#").strip()
    if not part:  # "#" alone: nothing to look for yet
        return Q()
    if len(part) >= SHORTEST_PART:
        match = Q(order_id__icontains=part)
    else:
        spellings = {
            "".join(letters) for letters in product(*({c.lower(), c.upper()} for c in part))
        }
        match = Q(order_id__in=sorted(spellings | {"#" + s for s in spellings}))
    prefix = mobile_search_prefix(text)
    if prefix:
        match |= Q(phone__startswith=prefix)
    return match


def filtered_orders(
    request: HttpRequest, orders: QuerySet[Order]
) -> tuple[OrderFilterForm, QuerySet[Order]]:
    form = OrderFilterForm(_with_preset_dates(request.GET))
    form.is_valid()  # fills cleaned_data with the valid fields and errors for the others
    return form, form.apply(orders)


def _today(params: QueryDict) -> dt.date:
    """Today in the zone of the store the filter names (or the default store zone)."""
    chosen = params.get("store", "")
    store = Store.objects.filter(pk=chosen).first() if _is_id(chosen) else None
    zone = store.zone if store else zoneinfo.ZoneInfo(settings.ROBODASH_DEFAULT_STORE_TIMEZONE)
    return timezone.now().astimezone(zone).date()


def _is_id(value: str) -> bool:
    return value.isdigit() and len(value) <= 18


def _with_preset_dates(params: QueryDict) -> QueryDict:
    """A preset (`range=last-7-days`, the reports' presets) stands for its dates."""
    key = params.get("range", "")
    if not key:
        return params
    chosen = next((p for p in presets(_today(params)) if p.key == key), None)
    data = params.copy()
    if chosen is not None:
        data["date_from"], data["date_to"] = chosen.first.isoformat(), chosen.last.isoformat()
    return data


def _preset_links(filters: QueryDict, form: OrderFilterForm) -> list[tuple[Preset, str, bool]]:
    """The reports' presets as links keeping the other filters; the one on show is current."""
    data = form.cleaned_data
    shown = (data.get("date_from"), data.get("date_to"))
    links: list[tuple[Preset, str, bool]] = []
    for preset in presets(timezone.now().astimezone(form.zone()).date()):
        query = filters.copy()
        for name in ("date_from", "date_to"):
            query.pop(name, None)
        query["range"] = preset.key
        current = shown == (preset.first, preset.last) and not any(c for _, _, c in links)
        links.append((preset, query.urlencode(), current))
    return links


def _view_links(filters: QueryDict) -> list[tuple[str, str, str, bool]]:
    """All orders and the one-click views, each keeping the store and the dates."""
    kept = QueryDict(mutable=True)
    for name in ("store", "range", "date_from", "date_to"):
        if name in filters:
            kept.setlist(name, filters.getlist(name))
    others = {"q", "status", "decision", "followup", "source"}
    chosen = {name: filters[name] for name in others if name in filters}
    labels = {
        "": _("All orders"),
        "ready": _("Ready to ship"),
        "needs-decision": _("Needs a decision"),
    }
    links = [("", labels[""], kept.urlencode(), not chosen)]
    for key, sets in VIEWS:
        query = kept.copy()
        query.update(sets)
        links.append((key, labels[key], query.urlencode(), chosen == sets))
    return links


def _calls_and_charges(orders: list[Order]) -> dict[int, tuple[int, Decimal | None]]:
    """Each order's number of calls and their charges, in one query over the page's orders
    (call_order_created_idx)."""
    totals = (
        Call.objects.filter(shop_order_id__in=[order.pk for order in orders])
        .order_by()
        .values("shop_order_id")
        .annotate(n=Count("id"), charges=Sum("call_charges"))
    )
    return {row["shop_order_id"]: (row["n"], row["charges"]) for row in totals}


@role_required(EVERYONE)
@require_GET
def order_list(request: HtmxHttpRequest) -> HttpResponse:
    form, orders = filtered_orders(request, Order.objects.select_related("store", "decided_by"))
    before = Cursor.decode(request.GET.get("before", ""))
    after = None if before else Cursor.decode(request.GET.get("after", ""))
    bad_cursor = bool(request.GET.get("before") or request.GET.get("after")) and not (
        before or after
    )
    # order_created_idx (or the per-store or per-status index) walked from the cursor; a search
    # is a bitmap of order_id_trgm_idx's matches when they are few.
    rows, has_more = newest_first_page(orders, "created_at", PAGE_SIZE, before, after)
    totals = _calls_and_charges(rows)
    filters = filters_without_page(request)
    newer_query, older_query = page_links(filters, rows, "created_at", has_more, before, after)
    context = {
        "form": form,
        "rows": [(order, *totals.get(order.pk, (0, None))) for order in rows],
        "paged": before is not None or after is not None,
        "bad_cursor": bad_cursor,
        "newer_query": newer_query,
        "older_query": older_query,
        "filter_query": filters.urlencode(),
        "filtering": any(value for value in filters.values()),
        "views": _view_links(filters),
        "presets": _preset_links(filters, form),
        "stores": Store.objects.order_by("name"),
        "statuses": Order.Status.choices,
        "decisions": OrderFilterForm.DECISIONS[1:],
        "sources": Order.Source.choices,
        "zone_name": form.zone().key,
        "can_export": user_can(request.user, REPORTS),
    }
    template = "orders/order_list.html"
    if request.htmx and not request.htmx.history_restore_request:
        template += "#order-results"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])  # the same URL answers with a page or a fragment
    return response


@role_required(REPORTS)
@require_GET
def order_export(request: HttpRequest, as_xlsx: bool = False) -> HttpResponseBase:
    """The filtered orders, newest first, as CSV (orders/export.csv) or Excel (.xlsx), with
    export_orders' columns."""
    form, orders = filtered_orders(request, Order.objects.all())
    if form.errors:
        return export_refused(form)
    filename = export_filename(
        "orders",
        store=form.cleaned_data.get("store"),
        first=form.cleaned_data.get("date_from"),
        last=form.cleaned_data.get("date_to"),
        today=timezone.now().astimezone(form.zone()).date(),
    )
    rows = orders_rows(orders.order_by("-created_at", "-id"))
    if as_xlsx:
        return xlsx_response(rows, f"{filename}.xlsx", title="Orders")
    return csv_response(rows, f"{filename}.csv")


# --- an order's page -----------------------------------------------------------------------


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
