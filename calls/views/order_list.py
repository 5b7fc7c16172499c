"""The Orders page: one row per order, newest first, found by any part of its id or a phone,
filtered in the URL (store, status, decision, follow-up, source, the parcel, the rules'
verdict, dates with the reports' presets), keyset-paged, with one-click views (ready to ship,
needs a decision), exported as CSV or .xlsx, and worked in bulk (calls/order_batches.py)."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal
from itertools import product

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, QuerySet, Sum
from django.http import HttpRequest, HttpResponse, QueryDict
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseStopPolling

from calls import formatting, order_batches
from calls.exports import (
    csv_response,
    export_filename,
    export_refused,
    orders_rows,
    xlsx_response,
)
from calls.forms import StoreDaysFilterForm
from calls.models import Call, Order, OrderBatch, Store
from calls.permissions import CALL_ACTIONS, EVERYONE, REPORTS, role_required, user_can
from calls.phones import mobile_search_prefix
from calls.views import HtmxHttpRequest, signed_in_user
from calls.views.paging import Cursor, filters_without_page, newest_first_page, page_links
from calls.views.reports import Preset, presets

PAGE_SIZE = 50
# Shorter than a trigram, a part of an id would match most orders and no index could find it
# (pg_trgm reads three characters at a time): one or two characters find the id itself.
SHORTEST_PART = 3
# The one-click views: (key, the filter it sets). "Ready to ship" is the orders confirmed;
# "needs a decision" the orders in the agents' follow-up queue.
VIEWS = (("ready", {"decision": "confirmed"}), ("needs-decision", {"followup": "open"}))


class OrderFilterForm(StoreDaysFilterForm):
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
    # The parcel: "none" is an order not known to have shipped (its `delivery` is "").
    DELIVERIES = (
        ("", _lazy("Any parcel state")),
        ("none", Order.Delivery.NONE.label),
        *[(code, label) for code, label in Order.Delivery.choices if code],
    )
    delivery = forms.ChoiceField(choices=DELIVERIES, required=False, label=_lazy("Parcel"))
    # What the store's rules said on arrival (calls/rules.py); "none": judged by none.
    VERDICTS = (
        ("", _lazy("Any verdict")),
        *[(code, label) for code, label in Order.Verdict.choices if code],
        ("none", Order.Verdict.NONE.label),
    )
    verdict = forms.ChoiceField(choices=VERDICTS, required=False, label=_lazy("Rules"))

    def apply(self, orders: QuerySet[Order]) -> QuerySet[Order]:
        """`orders` narrowed by every valid field; invalid fields are shown and ignored."""
        data = self.cleaned_data if self.is_bound else {}
        orders = self.within_store_and_days(orders)
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
        if data.get("delivery"):
            # Shipped, delivered or returned: order_delivery_created_idx, newest first.
            delivery = data["delivery"]
            orders = orders.filter(delivery="" if delivery == "none" else delivery)
        if data.get("verdict"):
            # Skip or hold: order_verdict_created_idx, newest first.
            verdict = data["verdict"]
            orders = orders.filter(verdict="" if verdict == "none" else verdict)
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
    params: QueryDict, orders: QuerySet[Order]
) -> tuple[OrderFilterForm, QuerySet[Order]]:
    """The page's filter form read from `params` (a page's query, or the one a bulk action
    carries), and `orders` narrowed by its valid fields."""
    form = OrderFilterForm(_with_preset_dates(params))
    form.is_valid()  # fills cleaned_data with the valid fields and errors for the others
    return form, form.apply(orders)


def _today(params: QueryDict) -> dt.date:
    """Today in the zone of the store the filter names (or the default store zone)."""
    chosen = params.get("store", "")
    store = Store.objects.filter(pk=chosen).first() if _is_id(chosen) else None
    zone = store.zone if store else zoneinfo.ZoneInfo(settings.ROBODASH_DEFAULT_STORE_TIMEZONE)
    return timezone.now().astimezone(zone).date()


def _is_id(value: str) -> bool:
    # isascii: "²" is a digit to str.isdigit(), not to int().
    return value.isascii() and value.isdigit() and len(value) <= 18


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
    others = {"q", "status", "decision", "followup", "source", "delivery", "verdict"}
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
    form, orders = filtered_orders(request.GET, Order.objects.select_related("store", "decided_by"))
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
        "deliveries": OrderFilterForm.DELIVERIES[1:],
        "verdicts": OrderFilterForm.VERDICTS[1:],
        "zone_name": form.zone().key,
        "can_export": user_can(request.user, REPORTS),
        "can_act": user_can(request.user, CALL_ACTIONS),
        "batch_actions": OrderBatch.Action.choices,
        "batch_limit": order_batches.MAX_ORDERS,
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
    form, orders = filtered_orders(request.GET, Order.objects.all())
    if form.errors:
        return export_refused(form)
    filename = export_filename("orders", **form.export_naming())
    rows = orders_rows(orders.order_by("-created_at", "-id"))
    if as_xlsx:
        return xlsx_response(rows, f"{filename}.xlsx", title="Orders")
    return csv_response(rows, f"{filename}.csv")


# --- bulk actions ----------------------------------------------------------------------------


def _carried_filters(request: HttpRequest) -> str:
    """The list's filters a bulk action carries, encoded again: whatever was posted, a query
    string safe to put back in a link or a Location header."""
    return QueryDict(request.POST.get("filters", "")).urlencode()


def _chosen_orders(request: HttpRequest) -> tuple[list[int], str]:
    """The orders a bulk action names — the rows ticked, or every order matching the filters
    it carries (newest first, at most MAX_ORDERS + 1 so a larger set can be refused) — and the
    filters' query, to go back to."""
    query = _carried_filters(request)
    if request.POST.get("scope") == "filter":
        form, orders = filtered_orders(QueryDict(query), Order.objects.all())
        if form.errors:  # a filter the page would ignore must not widen the action
            raise order_batches.BatchRefused(
                _("the filter has an error (%(fields)s): correct it on the page first.")
                % {"fields": ", ".join(str(form.fields[name].label) for name in form.errors)}
            )
        ids = list(
            orders.order_by("-created_at", "-id").values_list("pk", flat=True)[
                : order_batches.MAX_ORDERS + 1
            ]
        )
        return ids, query
    ticked = [value for value in request.POST.getlist("order") if _is_id(value)]
    return [int(value) for value in ticked[: order_batches.MAX_ORDERS + 1]], query


def _skipped_words(batch: OrderBatch) -> str:
    return "; ".join(
        ngettext("%(count)s %(why)s", "%(count)s %(why)s", count)
        % {"count": formatting.count(count), "why": order_batches.SKIP_REASONS.get(why, why)}
        for why, count in batch.skipped.items()
    )


def say_batch_result(request: HttpRequest, batch: OrderBatch) -> None:
    done = {
        OrderBatch.Action.CONFIRM: ngettext(
            "%(count)s order confirmed by hand: the shops are told to ship it.",
            "%(count)s orders confirmed by hand: the shops are told to ship them.",
            batch.changed,
        ),
        OrderBatch.Action.CANCEL: ngettext(
            "%(count)s order cancelled by hand: the shops are told not to ship it.",
            "%(count)s orders cancelled by hand: the shops are told not to ship them.",
            batch.changed,
        ),
        OrderBatch.Action.CALL_AGAIN: ngettext(
            "%(count)s order queued to be called again.",
            "%(count)s orders queued to be called again.",
            batch.changed,
        ),
    }[OrderBatch.Action(batch.action)] % {"count": formatting.count(batch.changed)}
    messages.success(request, done)
    if batch.skipped:
        messages.warning(
            request, _("Left as they were: %(skipped)s.") % {"skipped": _skipped_words(batch)}
        )


@role_required(EVERYONE)  # each action checks its own role below
@require_POST
def order_bulk(request: HttpRequest) -> HttpResponseBase:
    """A bulk action from /orders/: confirm, cancel or call again the chosen orders (a batch,
    calls/order_batches.py), or export them."""
    query = _carried_filters(request)
    back = f"{reverse('order_list')}?{query}" if query else reverse("order_list")
    action = request.POST.get("action", "")
    if action == "export" and not user_can(request.user, REPORTS):
        raise PermissionDenied
    if action in OrderBatch.Action.values and not user_can(request.user, CALL_ACTIONS):
        raise PermissionDenied
    try:
        ids, query = _chosen_orders(request)
    except order_batches.BatchRefused as refusal:
        messages.error(request, _("Nothing was changed: %(reason)s") % {"reason": refusal})
        return redirect(back)
    if action == "export":
        if not ids:
            messages.error(request, _("Not exported: select at least one order."))
            return redirect(back)
        rows = orders_rows(Order.objects.filter(pk__in=ids).order_by("-created_at", "-id"))
        zone = zoneinfo.ZoneInfo(settings.ROBODASH_DEFAULT_STORE_TIMEZONE)
        today = timezone.now().astimezone(zone).date()
        name = export_filename("orders-selected", store=None, first=None, last=None, today=today)
        return csv_response(rows, f"{name}.csv")
    try:
        batch = order_batches.start_batch(
            signed_in_user(request), action, ids, note=request.POST.get("note", "")
        )
    except order_batches.BatchRefused as refusal:
        messages.error(request, _("Nothing was changed: %(reason)s") % {"reason": refusal})
        return redirect(back)
    if batch.status == OrderBatch.Status.DONE:
        say_batch_result(request, batch)
        return redirect(back)
    return redirect(f"{reverse('order_batch', args=[batch.pk])}?{urlencode({'back': back})}")


@role_required(CALL_ACTIONS)
@require_GET
def order_batch(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """A bulk action running in a worker: its progress, polled by the page until it is done."""
    batch = get_object_or_404(OrderBatch.objects.select_related("created_by"), pk=pk)
    back = request.GET.get("back", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = reverse("order_list")
    context = {
        "batch": batch,
        "total": len(batch.order_ids),
        "skipped_words": _skipped_words(batch),
        "back": back,
    }
    if request.htmx and not request.htmx.history_restore_request:
        html = render_to_string("orders/batch.html#batch-progress", context, request=request)
        if batch.status == OrderBatch.Status.DONE:
            return HttpResponseStopPolling(html)
        return HttpResponse(html)
    return render(request, "orders/batch.html", context)
