"""Calls as CSV (one row per call, the same file from `export_calls` and the calls page) and
orders as CSV (one row per order, from `export_orders`).

Streamed: rows are read in chunks with a server-side cursor and written as they come, so an
export of a million calls holds a chunk, not the table. Times are ISO 8601 in the store's zone.
Cells that a spreadsheet would run as a formula are defused with a leading apostrophe (an order
id like `=HYPERLINK(...)` comes from a merchant's CSV, so from anyone).
"""

from __future__ import annotations

import csv
import datetime as dt
import zoneinfo
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, Protocol

from django import forms
from django.db.models import Count, DecimalField, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.http import HttpResponse

from calls.models import Call, Order

CALL_EXPORT_COLUMNS = [
    "order_id",
    "phone",
    "campaign",
    "state",
    "outcome",
    "call_status",
    "dtmf",
    "retry",
    "charges",
    "provider_call_id",
    "created_at",
    "finalized_at",
]
ORDER_EXPORT_COLUMNS = [
    "order_id",
    "store",
    "phone",
    "status",
    "decision",
    "decided_by",
    "calls",
    "last_outcome",
    "charges_total",
    "source",
    "created_at",
    "decided_at",
]
# decided_by of a decision made by the customer's key press (an agent's is their username).
DECIDED_BY_KEY_PRESS = "customer (key press)"
EXPORT_CHUNK_SIZE = 2000

# Excel, LibreOffice and Google Sheets start a formula (or a DDE command) with these.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

_EXPORT_FIELDS = (
    "order_id",
    "phone",
    "state",
    "outcome",
    "call_status",
    "dtmf",
    "retry",
    "call_charges",
    "provider_call_id",
    "created_at",
    "finalized_at",
    "campaign__name",
    "store__timezone",
)


class _Writable(Protocol):
    def write(self, text: str, /) -> Any: ...


def spreadsheet_safe(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def _cell(value: object, zone: zoneinfo.ZoneInfo) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.astimezone(zone).replace(microsecond=0).isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return spreadsheet_safe(str(value))


def _zone_of(name: str, zones: dict[str, zoneinfo.ZoneInfo]) -> zoneinfo.ZoneInfo:
    return zones.get(name) or zones.setdefault(name, zoneinfo.ZoneInfo(name))


def _rows(queryset: QuerySet[Call]) -> Iterator[list[str]]:
    calls = queryset.select_related("campaign", "store").only(*_EXPORT_FIELDS)
    zones: dict[str, zoneinfo.ZoneInfo] = {}
    for call in calls.iterator(chunk_size=EXPORT_CHUNK_SIZE):
        zone = _zone_of(call.store.timezone, zones)
        values = (
            call.order_id,
            call.phone,
            call.campaign.name,
            call.state,
            call.outcome,
            call.call_status,
            call.dtmf,
            call.retry,
            call.call_charges,
            call.provider_call_id,
            call.created_at,
            call.finalized_at,
        )
        yield [_cell(value, zone) for value in values]


def _order_rows(queryset: QuerySet[Order]) -> Iterator[list[str]]:
    # Each order's calls through call_order_created_idx: a few index probes per order, so the
    # export streams instead of grouping the whole calls table first.
    of_order = Call.objects.filter(shop_order=OuterRef("pk"))
    money: DecimalField[Decimal, Decimal] = DecimalField(max_digits=14, decimal_places=2)
    orders = queryset.select_related("store", "decided_by").annotate(
        n_calls=Subquery(
            of_order.order_by().values("shop_order").annotate(n=Count("pk")).values("n")
        ),
        charges_total=Coalesce(
            Subquery(
                of_order.order_by()
                .values("shop_order")
                .annotate(total=Sum("call_charges"))
                .values("total"),
                output_field=money,
            ),
            Value(Decimal("0.00")),
            output_field=money,
        ),
        last_outcome=Subquery(of_order.order_by("-created_at", "-id").values("outcome")[:1]),
    )
    zones: dict[str, zoneinfo.ZoneInfo] = {}
    for order in orders.iterator(chunk_size=EXPORT_CHUNK_SIZE):
        zone = _zone_of(order.store.timezone, zones)
        decided_by = ""
        if order.decided_by is not None:
            decided_by = order.decided_by.username
        elif order.decision:
            decided_by = DECIDED_BY_KEY_PRESS
        values = (
            order.order_id,
            order.store.name,
            order.phone,
            order.status,
            order.decision,
            decided_by,
            order.n_calls or 0,
            order.last_outcome,
            order.charges_total,
            order.source,
            order.created_at,
            order.decided_at,
        )
        yield [_cell(value, zone) for value in values]


def _write(columns: list[str], rows: Iterator[list[str]], out: _Writable) -> int:
    writer = csv.writer(out)
    writer.writerow(columns)
    count = 0
    for row in rows:
        writer.writerow(row)
        count += 1
    return count


def write_calls_csv(queryset: QuerySet[Call], out: _Writable) -> int:
    """Write the header and one row per call of `queryset` (in its order) to `out`; the count."""
    return _write(CALL_EXPORT_COLUMNS, _rows(queryset), out)


def write_orders_csv(queryset: QuerySet[Order], out: _Writable) -> int:
    """Write the header and one row per order of `queryset` (in its order) to `out`; the count."""
    return _write(ORDER_EXPORT_COLUMNS, _order_rows(queryset), out)


class _Line:
    """A file-like object whose write() returns what was written, for csv.writer."""

    def write(self, text: str) -> str:
        return text


def iter_calls_csv(queryset: QuerySet[Call]) -> Iterator[str]:
    """The same CSV as write_calls_csv, as strings for a StreamingHttpResponse."""
    writer = csv.writer(_Line())
    yield writer.writerow(CALL_EXPORT_COLUMNS)
    lines: list[str] = []
    for row in _rows(queryset):
        lines.append(writer.writerow(row))
        if len(lines) >= 200:  # fewer, larger chunks for the response
            yield "".join(lines)
            lines = []
    if lines:
        yield "".join(lines)


def export_refused(form: forms.Form) -> HttpResponse:
    """400 naming each bad filter: a page can show a bad filter beside its results, a file
    cannot, and exporting without the filter is not what was asked for."""
    problems = "; ".join(
        f"{field}: {' '.join(str(e) for e in errors)}" for field, errors in form.errors.items()
    )
    return HttpResponse(
        f"Cannot export: {problems}", status=400, content_type="text/plain; charset=utf-8"
    )
