"""Calls as CSV: one row per call, the same file from `export_calls` and the calls page.

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
from django.db.models import QuerySet
from django.http import HttpResponse

from calls.models import Call

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


def _rows(queryset: QuerySet[Call]) -> Iterator[list[str]]:
    calls = queryset.select_related("campaign", "store").only(*_EXPORT_FIELDS)
    zones: dict[str, zoneinfo.ZoneInfo] = {}
    for call in calls.iterator(chunk_size=EXPORT_CHUNK_SIZE):
        zone_name = call.store.timezone
        zone = zones.get(zone_name) or zones.setdefault(zone_name, zoneinfo.ZoneInfo(zone_name))
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


def write_calls_csv(queryset: QuerySet[Call], out: _Writable) -> int:
    """Write the header and one row per call of `queryset` (in its order) to `out`; the count."""
    writer = csv.writer(out)
    writer.writerow(CALL_EXPORT_COLUMNS)
    count = 0
    for row in _rows(queryset):
        writer.writerow(row)
        count += 1
    return count


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
