"""Calls and orders as CSV or Excel: one row per call (`export_calls`, the Calls page) or per
order (`export_orders`, the Orders page), each kind's columns defined once here for the command
and the pages alike.

Streamed: rows are read in chunks with a server-side cursor and written as they come, so an
export of a million calls holds a chunk, not the table. The .xlsx is written by openpyxl's
write-only mode into a temporary file, which the response then streams. Times are in the
store's zone: ISO 8601 with the offset in a CSV, date cells in an .xlsx (Excel has no zones);
amounts are numbers; phones are written as the pages show them (`0300 1234567`), which also
keeps a spreadsheet from reading them as numbers and dropping the 0. A page's file is named
after what it holds: the kind, the store and the range (`export_filename`).

The pages' CSV files start with the UTF-8 byte order mark: without it Excel reads the file as
the machine's legacy code page and garbles Urdu campaign and store names. (The commands write
to stdout for scripts, so no BOM there.)

Cells that a spreadsheet would run as a formula are defused (an order id like
`=HYPERLINK(...)` comes from a merchant's CSV, so from anyone): in a CSV with a leading
apostrophe, in an .xlsx by storing every text as a string cell, which is never evaluated.
"""

from __future__ import annotations

import csv
import datetime as dt
import tempfile
import zoneinfo
from collections.abc import Collection, Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Any, Protocol, cast

from django import forms
from django.db.models import Count, DecimalField, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.http import FileResponse, HttpResponse, StreamingHttpResponse
from django.utils.http import content_disposition_header
from django.utils.text import slugify
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from calls.formatting import national_phone, verdict_reasons
from calls.intake.rows import FORMULA_STARTS
from calls.models import Call, Order, Store

CALL_EXPORT_COLUMNS = [
    "order_id",
    "store",
    "phone",
    "amount",
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
    # The parcel: "" (not known to have shipped), shipped, delivered or returned; when it got
    # there; the courier's tracking number.
    "delivery",
    "delivery_at",
    "tracking",
    # What the store's rules said on arrival: call, skip, hold ("" before rules), and every
    # rule that matched, in words ("below Rs 1,000.00; trusted: 4 delivered, none returned").
    "verdict",
    "verdict_reasons",
]
# decided_by of a decision made by the customer's key press (an agent's is their username).
DECIDED_BY_KEY_PRESS = "customer (key press)"
DECIDED_BY_POLICY = "policy (no answer after every attempt)"
EXPORT_CHUNK_SIZE = 2000
BOM = "\ufeff"
# How an .xlsx shows the date cells (the value is a number of days, whatever the format).
XLSX_WHEN_FORMAT = "yyyy-mm-dd hh:mm:ss"
XLSX_DAY_FORMAT = "yyyy-mm-dd"
# Money: a number (Excel adds it up), shown as the pages show rupees.
XLSX_MONEY_FORMAT = '"Rs" #,##0.00'
CSV_CONTENT_TYPE = "text/csv; charset=utf-8"
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# Excel, LibreOffice and Google Sheets start a formula (or a DDE command) with these: the
# starts the upload preview warns of, and a tab or a carriage return.
_DEFUSED_STARTS = (*FORMULA_STARTS, "\t", "\r")

_EXPORT_FIELDS = (
    "order_id",
    "phone",
    "amount",
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
    "store__name",
    "store__timezone",
)


class _Writable(Protocol):
    def write(self, text: str, /) -> Any: ...


def spreadsheet_safe(value: str) -> str:
    return "'" + value if value.startswith(_DEFUSED_STARTS) else value


Cell = str | int | Decimal | dt.date  # a datetime is a date: a moment in the store's zone


def _value(value: object, zone: zoneinfo.ZoneInfo) -> Cell:
    """A cell's value for either format: numbers stay numbers, moments are put in `zone` (to
    the second), anything else is text."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.astimezone(zone).replace(microsecond=0)
    if isinstance(value, Decimal | int | dt.date) and not isinstance(value, bool):
        return value
    return str(value)


def csv_cell(value: Cell | None) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.date):  # a datetime too: ISO 8601, with its offset
        return value.isoformat()
    return spreadsheet_safe(value)


def _zone_of(name: str, zones: dict[str, zoneinfo.ZoneInfo]) -> zoneinfo.ZoneInfo:
    return zones.get(name) or zones.setdefault(name, zoneinfo.ZoneInfo(name))


def _rows(queryset: QuerySet[Call]) -> Iterator[list[Cell]]:
    calls = queryset.select_related("campaign", "store").only(*_EXPORT_FIELDS)
    zones: dict[str, zoneinfo.ZoneInfo] = {}
    for call in calls.iterator(chunk_size=EXPORT_CHUNK_SIZE):
        zone = _zone_of(call.store.timezone, zones)
        values = (
            call.order_id,
            call.store.name,
            national_phone(call.phone),
            call.amount,
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
        yield [_value(value, zone) for value in values]


def _order_rows(queryset: QuerySet[Order]) -> Iterator[list[Cell]]:
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
        # The latest verification call's: a notice call tells, it does not verify.
        last_outcome=Subquery(
            of_order.verifying().order_by("-created_at", "-id").values("outcome")[:1]
        ),
    )
    zones: dict[str, zoneinfo.ZoneInfo] = {}
    for order in orders.iterator(chunk_size=EXPORT_CHUNK_SIZE):
        zone = _zone_of(order.store.timezone, zones)
        decided_by = ""
        if order.decided_via == Order.DecidedVia.AGENT:
            decided_by = order.decided_by.username if order.decided_by else "agent"
        elif order.decided_via == Order.DecidedVia.POLICY:
            decided_by = DECIDED_BY_POLICY
        elif order.decision:
            decided_by = DECIDED_BY_KEY_PRESS
        values = (
            order.order_id,
            order.store.name,
            national_phone(order.phone),
            order.status,
            order.decision,
            decided_by,
            order.n_calls or 0,
            order.last_outcome,
            order.charges_total,
            order.source,
            order.created_at,
            order.decided_at,
            order.delivery,
            order.delivery_at,
            order.tracking,
            order.verdict,
            verdict_reasons(order.verdict_reasons),
        )
        yield [_value(value, zone) for value in values]


def _write(columns: list[str], rows: Iterator[list[Cell]], out: _Writable) -> int:
    writer = csv.writer(out)
    writer.writerow(columns)
    count = 0
    for row in rows:
        writer.writerow([csv_cell(value) for value in row])
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


def iter_csv(rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    """`rows` (the header first) as CSV text for a StreamingHttpResponse, the BOM first."""
    writer = csv.writer(_Line())
    lines: list[str] = [BOM]
    for row in rows:
        lines.append(writer.writerow([csv_cell(value) for value in row]))
        if len(lines) >= 200:  # fewer, larger chunks for the response
            yield "".join(lines)
            lines = []
    if lines:
        yield "".join(lines)


def iter_calls_csv(queryset: QuerySet[Call]) -> Iterator[str]:
    """The same CSV as write_calls_csv (with the BOM), as strings for a StreamingHttpResponse."""
    return iter_csv(calls_rows(queryset))


def _with_header(columns: list[str], rows: Iterator[list[Cell]]) -> Iterator[Any]:
    yield columns
    yield from rows


def xlsx_cell(sheet: Any, value: Any, *, money: bool = False) -> Any:
    """A write-only cell: numbers as numbers (`money`: shown in rupees), everything else as a
    string cell, so a text starting with "=" is shown, never run (openpyxl would otherwise store
    it as a formula)."""
    if isinstance(value, Decimal | int | float) and not isinstance(value, bool):
        # openpyxl writes a Decimal's exact digits (its stubs leave Decimal out).
        cell = WriteOnlyCell(sheet, value=cast(Any, value))
        if money:
            cell.number_format = XLSX_MONEY_FORMAT
        return cell
    if isinstance(value, dt.datetime):
        # Excel has no zones: the store's wall-clock time, as the CSV's before its offset.
        cell = WriteOnlyCell(sheet, value=value.replace(tzinfo=None))
        cell.number_format = XLSX_WHEN_FORMAT
        return cell
    if isinstance(value, dt.date):
        cell = WriteOnlyCell(sheet, value=cast(Any, value))  # a date cell (stubs say datetime)
        cell.number_format = XLSX_DAY_FORMAT
        return cell
    cell = WriteOnlyCell(sheet, value=None)
    # A workbook cannot hold control characters (openpyxl refuses them); an order id from a
    # shop's webhook may carry one.
    text = "" if value is None else ILLEGAL_CHARACTERS_RE.sub("\ufffd", str(value))
    cell.value = text
    cell.data_type = "s"
    return cell


def xlsx_file(
    rows: Iterable[Sequence[Any]], *, title: str, money_columns: Collection[str] = ()
) -> Any:
    """`rows` (the header first) as an .xlsx in a temporary file, rewound for reading; the
    numbers of the columns named in `money_columns` shown as rupees. The write-only workbook
    keeps one row in memory; the caller closes the file (a FileResponse does), which deletes
    it."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=title[:31])
    lines = iter(rows)
    header = next(lines, None)
    if header is not None:
        sheet.append([xlsx_cell(sheet, value) for value in header])
        money = [str(name) in money_columns for name in header]
        for row in lines:
            sheet.append(
                [
                    xlsx_cell(sheet, value, money=is_money)
                    for value, is_money in zip(row, money, strict=True)
                ]
            )
    out = tempfile.TemporaryFile(suffix=".xlsx")  # noqa: SIM115 - handed to the caller open
    try:
        book.save(out)
    except BaseException:
        out.close()
        raise
    out.seek(0)
    return out


def attachment(filename: str) -> str:
    """The Content-Disposition of a download: a name beyond ASCII (an Urdu store's) as
    filename*=utf-8''…, which browsers read, beside an ASCII fallback."""
    return content_disposition_header(True, filename) or "attachment"


def csv_response(rows: Iterable[Sequence[Any]], filename: str) -> StreamingHttpResponse:
    """A streamed CSV download (UTF-8 with the BOM Excel needs) of `rows`, the header first."""
    response = StreamingHttpResponse(iter_csv(rows), content_type=CSV_CONTENT_TYPE)
    response["Content-Disposition"] = attachment(filename)
    response["Cache-Control"] = "no-store"
    return response


def xlsx_response(
    rows: Iterable[Sequence[Any]],
    filename: str,
    *,
    title: str,
    money_columns: Collection[str] = (),
) -> FileResponse:
    """An .xlsx download of `rows`, the header first, streamed from a temporary file (see
    xlsx_file for `money_columns`)."""
    response = FileResponse(
        xlsx_file(rows, title=title, money_columns=money_columns),
        as_attachment=True,
        filename=filename,
        content_type=XLSX_CONTENT_TYPE,
    )
    response["Cache-Control"] = "no-store"
    return response


def calls_rows(queryset: QuerySet[Call]) -> Iterator[Any]:
    """The header and one row per call of `queryset`, for csv_response or xlsx_response."""
    return _with_header(CALL_EXPORT_COLUMNS, _rows(queryset))


def orders_rows(queryset: QuerySet[Order]) -> Iterator[Any]:
    """The header and one row per order of `queryset`, for csv_response or xlsx_response."""
    return _with_header(ORDER_EXPORT_COLUMNS, _order_rows(queryset))


def export_filename(
    kind: str,
    *,
    store: Store | None,
    first: dt.date | None,
    last: dt.date | None,
    today: dt.date,
) -> str:
    """What a page's file holds, without its extension: the kind, the store and the range.

    orders-karachi-kitchenware-20261101-20261130    a store, a range
    calls-all-stores-20261101-20261207              from the 1st: up to today
    calls-all-stores-until-20261207                 no start: everything up to a day
    """
    if store is None:
        whose = "all-stores"
    else:  # an Urdu name keeps its letters (the header says the name in UTF-8)
        whose = slugify(store.name, allow_unicode=True) or f"store-{store.pk}"
    if first is None:
        span = f"until-{last or today:%Y%m%d}"
    else:
        span = f"{first:%Y%m%d}-{last or today:%Y%m%d}"
    return f"{kind}-{whose}-{span}"


def export_refused(form: forms.Form) -> HttpResponse:
    """400 naming each bad filter: a page can show a bad filter beside its results, a file
    cannot, and exporting without the filter is not what was asked for."""
    problems = "; ".join(
        f"{field}: {' '.join(str(e) for e in errors)}" for field, errors in form.errors.items()
    )
    return HttpResponse(
        f"Cannot export: {problems}", status=400, content_type="text/plain; charset=utf-8"
    )
