"""Orders into calls: the CSV import (command and upload page) and the single-order form.

Columns: `phone,amount,order_id,store_name`, optionally `voice_id,text3..text5,key1..key5`.
Header names are matched case-insensitively, trimmed, with spaces or dashes read as `_`
("Order ID" is `order_id`); other columns are ignored. A file is CSV (UTF-8 with or without the
BOM Excel writes) or an Excel .xlsx workbook (its first sheet, read within the bounds of
calls/intake/workbooks.py), told apart by its first bytes, not its name: an .xlsx renamed .csv is
read as the workbook it is, and an old .xls is refused with what to do instead. Amounts may carry
the currency ("Rs 2,000", "PKR 2000", "2,000/-").

Each row is validated on its own: a bad row is reported by its spreadsheet row number (the header
is row 1) with every reason, and the rest still import. Each new row becomes an order of the store
and its first call. An order id the store already has (from any campaign, file or the form) is
"already known" and places no call: an order is called automatically at most once, so files
that overlap yesterday's are harmless. An order id earlier in the same file is a duplicate.
Neither is an error. A problem with the file as a whole (no header, a required column missing,
not UTF-8) imports nothing.

The file is read as a stream and inserted in batches inside one transaction, so a 100,000-row
file neither sits in memory nor leaves half an import behind when something fails.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import IO, Any, cast

from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone

from calls.intake.file_errors import ImportFileError
from calls.intake.storable_text import refused_character
from calls.models import Call, CallEvent, Campaign, Order, Store
from calls.phones import InvalidPhone, normalize_pk_mobile
from calls.pipeline.dispatch import wake_dispatcher
from calls.transitions import queue_call

REQUIRED_COLUMNS = ("phone", "amount", "order_id", "store_name")
TEXT_COLUMNS = ("text3", "text4", "text5")
KEY_COLUMNS = ("key1", "key2", "key3", "key4", "key5")
OPTIONAL_COLUMNS = ("voice_id", *TEXT_COLUMNS, *KEY_COLUMNS)
KNOWN_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
_EXTRA_COLUMNS = (*TEXT_COLUMNS, *KEY_COLUMNS)


def max_length_of(model: type[models.Model], name: str) -> int:
    field = model._meta.get_field(name)
    assert isinstance(field, models.CharField) and field.max_length is not None
    return field.max_length


# Lengths of the Call fields each value lands in.
MAX_LENGTHS = {
    "order_id": max_length_of(Call, "order_id"),
    "store_name": max_length_of(Call, "text1"),
    **{name: max_length_of(Call, name) for name in _EXTRA_COLUMNS},
}
MAX_AMOUNT = Decimal("9999999999.99")  # Call.amount: 12 digits, 2 of them decimals
MAX_VOICE_ID = 2**31 - 1  # PositiveIntegerField
CENT = Decimal("0.01")

BATCH_SIZE = 2000  # rows per lookup of known orders and per INSERT
# pg_advisory_xact_lock(INTAKE_LOCK, store id): one bulk intake of orders per store at a time (an
# import, a batch of a launch), so two cannot both find an order id new and both insert it. A
# single order (the form, a shop's webhook, the API) takes the lock shared: single orders do not
# wait for each other, only for a bulk intake, and the unique order_unique_per_store index sorts
# out two single orders with the same id (the second is "already known").
INTAKE_LOCK = 0x4F524453  # "ORDS"
PROGRESS_EVERY = 10_000

# 1500, 1500.5, 1,500 or 1,500.50: commas only as thousands separators, so "1,5" is refused
# rather than read as 15 or 1.5.
_AMOUNT = re.compile(r"(\d+|\d{1,3}(,\d{3})+)(\.\d+)?")
# How rupees are written around the number: "Rs 2,000", "Rs. 2,000.50", "PKR 2000", "₨2000",
# "2,000/-". Dropped before the number is read.
_CURRENCY_BEFORE = re.compile(r"^(?:rs\.?|pkr|₨)\s*", re.IGNORECASE)
_CURRENCY_AFTER = re.compile(r"\s*(?:/-|rs\.?|pkr)$", re.IGNORECASE)
# The first bytes of a zip (an .xlsx is one) and of an OLE2 compound file (an old .xls).
ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# A text cell starting with one of these is run by a spreadsheet as a formula.
FORMULA_STARTS = ("=", "+", "-", "@")
CsvSource = IO[bytes] | IO[str] | File


@dataclass(frozen=True)
class RowError:
    row: int  # as a spreadsheet numbers it: the header is row 1
    message: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.message}"


@dataclass(frozen=True)
class DuplicateRow:
    """An order id that an earlier row of the same file already has."""

    row: int
    order_id: str
    reason: str  # "repeats row 4"

    def __str__(self) -> str:
        return f"row {self.row}: order {self.order_id!r} {self.reason}, skipped"


@dataclass(frozen=True)
class KnownRow:
    """An order id the store already has: no call is placed for it."""

    row: int
    order_id: str
    status: str  # the known order's status label, e.g. "Confirmed"
    since: dt.datetime  # when the store first got it

    @property
    def reason(self) -> str:
        return f"already known ({self.status.lower()}, {self.since:%Y-%m-%d})"

    def __str__(self) -> str:
        return f"row {self.row}: order {self.order_id!r} {self.reason}, not called again"


@dataclass(frozen=True)
class OrderRow:
    """One validated order, ready to become a call."""

    row: int  # 0 for the single-order form
    phone: str  # 923XXXXXXXXX
    amount: Decimal
    order_id: str
    store_name: str
    voice_id: int | None = None
    extras: Mapping[str, str] = field(default_factory=dict)  # text3..text5, key1..key5 given


@dataclass
class ImportReport:
    imported: int = 0
    skipped_duplicates: int = 0
    rejected: list[RowError] = field(default_factory=list)
    total_rows: int = 0
    duplicates: list[DuplicateRow] = field(default_factory=list)
    known: list[KnownRow] = field(default_factory=list)


# --- Validation (shared by the CSV and the single-order form) ---------------------------------


def parse_amount(text: str) -> Decimal:
    """A positive amount in rupees with at most 2 decimals; ValueError saying why not."""
    text = text.strip()
    if not text:
        raise ValueError("amount is missing")
    number = _CURRENCY_AFTER.sub("", _CURRENCY_BEFORE.sub("", text))
    if not _AMOUNT.fullmatch(number):
        if number.startswith("-"):
            raise ValueError(f"amount {text!r} must be more than 0")
        raise ValueError(f"amount {text!r} is not a number (e.g. 1500, 1,500.50 or Rs 2,000)")
    try:
        value = Decimal(number.replace(",", ""))
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        raise ValueError(f"amount {text!r} is not a number") from None
    if value <= 0:
        raise ValueError(f"amount {text!r} must be more than 0")
    if value != value.quantize(CENT):
        raise ValueError(f"amount {text!r} has more than 2 decimals")
    if value > MAX_AMOUNT:
        raise ValueError(f"amount {text!r} is too large")
    return value.quantize(CENT)


def formula_warning(order: OrderRow) -> str:
    """What in a valid order a spreadsheet would run as a formula (a text cell starting with
    =, +, - or @), said for the preview; "" if nothing. The phone is left out: its + is normal
    and it is stored as digits. robodash keeps such text as written and its exports defuse
    it, but the file came from a spreadsheet that may already have run it."""
    texts = {"order_id": order.order_id, "store_name": order.store_name, **order.extras}
    columns = [name for name, value in texts.items() if value.startswith(FORMULA_STARTS)]
    if not columns:
        return ""
    one = len(columns) == 1
    return (
        f"{', '.join(columns)} start{'s' if one else ''} with "
        f"{', '.join(sorted({texts[name][0] for name in columns}))}: a spreadsheet may run "
        f"{'it as a formula; check the value is' if one else 'them as formulas; check they are'}"
        " what the customer should hear"
    )


def parse_voice_id(text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if not text.isdigit() or not 0 < int(text) <= MAX_VOICE_ID:
        raise ValueError(f"voice_id {text!r} must be a positive whole number")
    return int(text)


def validate_order(values: Mapping[str, str], *, row: int = 0) -> OrderRow | dict[str, str]:
    """The order in `values` (column name -> raw text), or every problem by field name."""
    text = {name: (value or "").strip() for name, value in values.items()}
    errors: dict[str, str] = {}

    phone = ""
    try:
        phone = normalize_pk_mobile(text.get("phone", ""))
    except InvalidPhone as exc:
        errors["phone"] = str(exc)

    amount = Decimal(0)
    try:
        amount = parse_amount(text.get("amount", ""))
    except ValueError as exc:
        errors["amount"] = str(exc)

    if not text.get("order_id"):
        errors["order_id"] = "order_id is missing"
    if not text.get("store_name"):
        errors["store_name"] = "store_name is missing (the voice reads it out to the customer)"

    voice_id = None
    try:
        voice_id = parse_voice_id(text.get("voice_id", ""))
    except ValueError as exc:
        errors["voice_id"] = str(exc)

    for name, value in text.items():
        refused = refused_character(name, value)
        if refused is not None:
            # Said instead of whatever else is wrong with the value: its other messages would
            # quote the refused character.
            errors[name] = str(refused)
            continue
        limit = MAX_LENGTHS.get(name)
        if limit is not None and len(value) > limit:
            errors[name] = f"{name} is longer than {limit} characters ({len(value)})"

    if errors:
        return errors
    return OrderRow(
        row=row,
        phone=phone,
        amount=amount,
        order_id=text["order_id"],
        store_name=text["store_name"],
        voice_id=voice_id,
        extras={name: text[name] for name in _EXTRA_COLUMNS if text.get(name)},
    )


# --- Reading the file -------------------------------------------------------------------------


def _header_name(raw: str) -> str:
    return re.sub(r"[\s\-]+", "_", raw.strip().lstrip("\ufeff").strip().lower())


@contextmanager
def _text_lines(file: CsvSource) -> Iterator[IO[str]]:
    """`file` as text, decoded as UTF-8 (a BOM dropped) while it is read, never all at once."""
    if isinstance(file, io.TextIOBase):
        yield cast(IO[str], file)  # already text (a test, a file opened as text)
        return
    wrapper = io.TextIOWrapper(cast(Any, file), encoding="utf-8-sig", newline="")
    try:
        yield wrapper
    finally:
        # Hand the caller's file back open: closing the wrapper would close it too.
        wrapper.detach()


def _header_columns(header: list[str]) -> dict[str, int]:
    """Known column name -> its index; other columns are ignored."""
    columns: dict[str, int] = {}
    for index, raw in enumerate(header):
        name = _header_name(raw)
        if name not in KNOWN_COLUMNS:
            continue
        if name in columns:
            raise ImportFileError("column_twice", name=name)
        columns[name] = index
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise ImportFileError(
            "columns_missing",
            missing=missing,
            found=[_header_name(h) for h in header if _header_name(h)],
            semicolons=len(header) == 1 and ";" in header[0],
        )
    return columns


def _csv_rows(file: CsvSource) -> Iterator[tuple[int, list[str], dict[str, int], int]]:
    """(spreadsheet row number, cells, header columns, header width) per non-blank data row."""
    row_number = 1
    with _text_lines(file) as text:
        reader = csv.reader(text)
        try:
            header = next(reader, None)
            if header is None or not any(cell.strip() for cell in header):
                raise ImportFileError("empty_file")
            columns = _header_columns(header)
            for row_number, cells in enumerate(reader, start=2):
                if any(cell.strip() for cell in cells):  # Excel leaves blank rows at the end
                    yield row_number, cells, columns, len(header)
        except UnicodeDecodeError:
            raise ImportFileError("not_utf8", row=row_number + 1) from None
        except csv.Error as exc:
            raise ImportFileError("bad_csv", row=row_number + 1, error=str(exc)) from None


def _sniff(file: CsvSource) -> bytes:
    """The first bytes of a binary `file`, which is then rewound (b"" for a text stream)."""
    if isinstance(file, io.TextIOBase):
        return b""
    head = file.read(8)
    file.seek(0)
    return head if isinstance(head, bytes) else b""


def _xlsx_rows(
    file: CsvSource, on_size: Callable[[int], None] | None = None
) -> Iterator[tuple[int, list[str], dict[str, int], int]]:
    """As _csv_rows, for the first sheet of an .xlsx, read within the bounds of
    calls/intake/workbooks.py (openpyxl's read-only mode parses the sheet as it is iterated)."""
    from calls.intake import workbooks

    with workbooks.first_sheet(cast(IO[bytes], file), on_size) as rows:
        header = [workbooks.cell_text(value) for value in next(rows, ())]
        while header and not header[-1].strip():
            header.pop()  # a sheet's width is its widest row: trailing empty header cells
        if not any(cell.strip() for cell in header):
            raise ImportFileError("empty_sheet")
        columns = _header_columns(header)
        width = len(header)
        for row_number, values in enumerate(rows, start=2):
            cells = [workbooks.cell_text(value) for value in values[:width]]
            if any(cell.strip() for cell in cells):
                # No quoting in a workbook, so no "wrong number of fields": pad short rows.
                yield row_number, cells + [""] * (width - len(cells)), columns, width


def is_workbook(file: CsvSource) -> bool:
    """Whether `file` is a zip, as an .xlsx is (told by its first bytes, not its name)."""
    return _sniff(file).startswith(ZIP_MAGIC)


def _file_rows(
    file: CsvSource, on_sheet_size: Callable[[int], None] | None = None
) -> Iterator[tuple[int, list[str], dict[str, int], int]]:
    """The rows of a CSV or .xlsx, told apart by the file's first bytes, not its name.
    `on_sheet_size` is told a workbook's rows (blank ones included) before they are read."""
    head = _sniff(file)
    if head.startswith(OLE_MAGIC):
        raise ImportFileError("old_xls")
    if head.startswith(ZIP_MAGIC):
        return _xlsx_rows(file, on_sheet_size)
    return _csv_rows(file)


def _validate_cells(
    row: int, cells: list[str], columns: dict[str, int], width: int
) -> OrderRow | RowError:
    if len(cells) != width:
        return RowError(
            row,
            f"has {len(cells)} fields but the header has {width} (a comma inside a value, "
            'e.g. an amount like 1,500, must be in quotes: "1,500")',
        )
    values = {name: cells[index] for name, index in columns.items()}
    result = validate_order(values, row=row)
    if isinstance(result, dict):
        return RowError(row, "; ".join(result.values()))
    return result


def validated_rows(
    file: CsvSource, on_sheet_size: Callable[[int], None] | None = None
) -> Iterator[OrderRow | RowError]:
    """Each non-blank data row of `file` (CSV or .xlsx), validated: the one reading of a file
    that the upload page, import_csv and import_calls share. ImportFileError if the file as a
    whole is unusable; `on_sheet_size` as for _file_rows."""
    for row, cells, columns, width in _file_rows(file, on_sheet_size):
        yield _validate_cells(row, cells, columns, width)


def _by_row(skipped: DuplicateRow | KnownRow) -> int:
    return skipped.row


@dataclass
class _Tally:
    total_rows: int = 0
    rejected: list[RowError] = field(default_factory=list)
    duplicates: list[DuplicateRow] = field(default_factory=list)
    known: list[KnownRow] = field(default_factory=list)


def _new_orders(
    file: CsvSource,
    store: Store | None,
    tally: _Tally,
    progress: Callable[[int], None] | None = None,
) -> Iterator[list[OrderRow]]:
    """Batches of valid orders that `store` does not have yet (None: look nothing up) and that
    are not earlier in the file; the rest tallied."""
    first_row_of: dict[str, int] = {}  # order id -> row it was first seen valid on
    pending: list[OrderRow] = []
    for result in validated_rows(file):
        tally.total_rows += 1
        if progress and tally.total_rows % PROGRESS_EVERY == 0:
            progress(tally.total_rows)
        if isinstance(result, RowError):
            tally.rejected.append(result)
            continue
        first = first_row_of.get(result.order_id)
        if first is not None:
            tally.duplicates.append(
                DuplicateRow(result.row, result.order_id, f"repeats row {first}")
            )
            continue
        first_row_of[result.order_id] = result.row
        pending.append(result)
        if len(pending) >= BATCH_SIZE:
            yield _drop_known(pending, store, tally)
            pending = []
    if pending:
        yield _drop_known(pending, store, tally)


def _drop_known(orders: list[OrderRow], store: Store | None, tally: _Tally) -> list[OrderRow]:
    if store is None:
        return orders
    known = known_orders(store, [o.order_id for o in orders])
    if not known:
        return orders
    labels = dict(Order.Status.choices)
    for order in orders:
        found = known.get(order.order_id)
        if found is not None:
            status, since = found
            tally.known.append(KnownRow(order.row, order.order_id, str(labels[status]), since))
    return [o for o in orders if o.order_id not in known]


def known_orders(store: Store, order_ids: list[str]) -> dict[str, tuple[str, dt.datetime]]:
    """Which of `order_ids` `store` already has: order id -> (status, created_at). Served by the
    unique index order_unique_per_store (store, order_id)."""
    # One array parameter: an IN list of 2,000 costs several times more to build and plan.
    meta, quote = Order._meta, connection.ops.quote_name
    column = {f.name: quote(f.column) for f in meta.concrete_fields}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {column['order_id']}, {column['status']}, {column['created_at']} "
            f"FROM {quote(meta.db_table)} "
            f"WHERE {column['store']} = %s AND {column['order_id']} = ANY(%s)",
            [store.pk, order_ids],
        )
        return {order_id: (status, at) for order_id, status, at in cursor.fetchall()}


def _has_orders(store: Store | None) -> bool:
    return store is not None and store.pk is not None and Order.objects.filter(store=store).exists()


def lock_intake(store: Store, *, shared: bool = False) -> None:
    """Take the store's intake lock until the transaction ends (see INTAKE_LOCK)."""
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}(%s, %s)", [INTAKE_LOCK, store.pk])


# --- Public interface -------------------------------------------------------------------------


def _message_values(order: OrderRow, campaign: Campaign, store: Store) -> tuple[Any, ...]:
    """The _MESSAGE fields of an order and of its first call."""
    extras = order.extras
    return (
        order.order_id,
        order.phone,
        order.amount,
        order.voice_id or campaign.voice_id or store.default_voice_id,
        order.store_name,
        order.order_id,
        *(extras.get(name, "") for name in TEXT_COLUMNS),
        *(extras.get(name, "") for name in KEY_COLUMNS),
    )


_MESSAGE = (
    "order_id",
    "phone",
    "amount",
    "voice_id",
    "text1",
    "text2",
    *TEXT_COLUMNS,
    *KEY_COLUMNS,
)


def _order_for(
    order: OrderRow, campaign: Campaign, store: Store, *, source: str, now: Any
) -> Order:
    return Order(
        store_id=store.pk,
        campaign_id=campaign.pk,
        source=source,
        created_at=now,
        **dict(zip(_MESSAGE, _message_values(order, campaign, store), strict=True)),
    )


# --- Writing the orders and their calls ---------------------------------------------------------
#
# bulk_create spends most of a big import preparing every field of every row in Python (about
# 3,500 rows/s here). The orders, calls and events go in through COPY instead, the fields that
# are the same on every row prepared once; ids are taken from the tables' sequences first so
# each call knows its order and each event its call.

_ORDER_VARYING = ("id", *_MESSAGE)
_CALL_VARYING = ("id", "shop_order_id", *_MESSAGE)


class CopyWriter:
    """Rows of one model through COPY. The `varying` fields come with each row; every other
    field is taken from `prototype`, prepared as save() would (defaults, auto_now), so a field
    added to the model later is filled in without a change here."""

    def __init__(self, prototype: models.Model, varying: tuple[str, ...]) -> None:
        quote = connection.ops.quote_name
        fields = [
            f for f in prototype._meta.concrete_fields if f.attname in varying or not f.primary_key
        ]
        self.sql = (
            f"COPY {quote(prototype._meta.db_table)} "
            f"({', '.join(quote(f.column) for f in fields)}) FROM STDIN"
        )
        self.template: list[Any] = [
            None
            if f.attname in varying
            else f.get_db_prep_save(f.pre_save(prototype, add=True), connection)
            for f in fields
        ]
        position = {f.attname: i for i, f in enumerate(fields)}
        self.slots = [position[name] for name in varying]

    def write(self, rows: Iterable[Iterable[Any]]) -> None:
        with connection.cursor() as cursor, cursor.copy(self.sql) as copy:
            for values in rows:
                row = self.template.copy()
                for slot, value in zip(self.slots, values, strict=True):
                    row[slot] = value
                copy.write_row(row)


class _CreatedEvents:
    """The `created` event of each imported call: one INSERT ... SELECT per batch over two
    arrays (call ids, row numbers), so nothing is formatted per row in Python. The other
    fields come from `prototype`, as in CopyWriter."""

    def __init__(self, prototype: CallEvent) -> None:
        quote = connection.ops.quote_name
        meta = CallEvent._meta
        fields = [
            f
            for f in meta.concrete_fields
            if not f.primary_key and f.attname not in ("call_id", "data")
        ]
        self.constants = [
            f.get_db_prep_save(f.pre_save(prototype, add=True), connection) for f in fields
        ]
        column_of = {f.attname: f.column for f in meta.concrete_fields}
        columns = [quote(f.column) for f in fields]
        columns += [quote(column_of["call_id"]), quote(column_of["data"])]
        casts = [f"%s::{f.db_type(connection)}" for f in fields]
        self.sql = (
            f"INSERT INTO {quote(meta.db_table)} ({', '.join(columns)}) "
            f"SELECT {', '.join(casts)}, u.call_id, "
            "jsonb_build_object('source', 'csv', 'row', u.row) "
            "FROM unnest(%s::bigint[], %s::integer[]) AS u(call_id, row)"
        )

    def write(self, call_ids: list[int], rows: list[int]) -> None:
        with connection.cursor() as cursor:
            cursor.execute(self.sql, [*self.constants, call_ids, rows])


def _reserve_ids(model: type[models.Model], count: int) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [model._meta.db_table, model._meta.pk.column, count],
        )
        return [row[0] for row in cursor.fetchall()]


def _insert_by_copy(
    batches: Iterable[list[OrderRow]],
    campaign: Campaign,
    store: Store,
    now: Any,
    due: Any,
    actor_id: int | None,
) -> int:
    orders = CopyWriter(
        Order(store_id=store.pk, campaign_id=campaign.pk, source=Order.Source.CSV, created_at=now),
        _ORDER_VARYING,
    )
    calls = CopyWriter(
        Call(store_id=store.pk, campaign_id=campaign.pk, scheduled_for=due, created_at=now),
        _CALL_VARYING,
    )
    events = _CreatedEvents(CallEvent(at=now, kind=CallEvent.Kind.CREATED, actor_id=actor_id))
    inserted = 0
    for batch in batches:
        order_ids = _reserve_ids(Order, len(batch))
        call_ids = _reserve_ids(Call, len(batch))
        messages = [_message_values(order, campaign, store) for order in batch]
        orders.write(
            (order_id, *message) for order_id, message in zip(order_ids, messages, strict=True)
        )
        calls.write(
            (call_id, order_id, *message)
            for call_id, order_id, message in zip(call_ids, order_ids, messages, strict=True)
        )
        events.write(call_ids, [order.row for order in batch])
        inserted += len(batch)
    return inserted


def import_csv(
    file: CsvSource,
    *,
    campaign: Campaign,
    created_by: Any = None,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import every valid order of `file` that the campaign's store does not have yet into
    `campaign`, each as an order and its queued first call, all or nothing.

    ImportFileError (nothing imported) when the file as a whole is unusable. `progress` is
    called with the number of rows read every PROGRESS_EVERY rows.
    """
    tally = _Tally()
    with transaction.atomic():
        locked = Campaign.objects.select_related("store").get(pk=campaign.pk)
        store = locked.store
        lock_intake(store)
        now = timezone.now()
        imported = _insert_by_copy(
            # With the intake locked, a store without orders gets none from anyone else: only
            # repeats within the file need finding.
            _new_orders(file, store if _has_orders(store) else None, tally, progress),
            locked,
            store,
            now,
            store.next_calling_time(now),
            getattr(created_by, "pk", None),
        )
        if imported:
            wake_dispatcher()
    return ImportReport(
        imported=imported,
        skipped_duplicates=len(tally.duplicates),
        rejected=tally.rejected,
        total_rows=tally.total_rows,
        duplicates=sorted(tally.duplicates, key=_by_row),
        known=sorted(tally.known, key=_by_row),
    )


def add_orders(
    orders: list[OrderRow], campaign: Campaign, *, actor_id: int | None
) -> tuple[int, int]:
    """One batch of an upload's launch, in the caller's transaction: those of `orders` the
    campaign's store does not have yet become orders and queued calls; (added, already known).
    Takes the store's intake lock until the transaction ends, so a batch and any other intake
    cannot both add the same order."""
    store = campaign.store
    lock_intake(store)
    tally = _Tally()
    new = _drop_known(orders, store, tally)
    now = timezone.now()
    added = _insert_by_copy(
        [new] if new else [], campaign, store, now, store.next_calling_time(now), actor_id
    )
    return added, len(tally.known)


def _already_known(store: Store, order_id: str) -> ValidationError:
    status, since = known_orders(store, [order_id])[order_id]
    label = Order.Status(status).label.lower()
    return ValidationError(
        {
            "order_id": f"order {order_id!r} is already known ({label}, since "
            f"{since.astimezone(store.zone):%Y-%m-%d}); it is not called again"
        }
    )


def create_single_call(
    campaign: Campaign,
    *,
    phone: str,
    amount: str | Decimal,
    order_id: str,
    store_name: str,
    voice_id: str | int | None = None,
    created_by: Any = None,
    source: str = Order.Source.FORM,
    customer_name: str = "",
    shop_ref: str = "",
    **extras: str,
) -> Call:
    """One order from the form (or a shop, `source`), and its queued first call. ValidationError
    by field (the form shows them) for a bad value or an order id the store already has (it is
    not called again)."""
    unknown = set(extras) - set(TEXT_COLUMNS) - set(KEY_COLUMNS)
    if unknown:
        raise TypeError(f"unexpected fields: {', '.join(sorted(unknown))}")
    values = {
        "phone": phone,
        "amount": str(amount),
        "order_id": order_id,
        "store_name": store_name,
        "voice_id": "" if voice_id is None else str(voice_id),
        # Stored with the order, not read out: checked for characters only.
        "customer_name": customer_name,
        "shop_ref": shop_ref,
        **extras,
    }
    result = validate_order(values)
    if isinstance(result, dict):
        raise ValidationError(result)
    with transaction.atomic():
        locked = Campaign.objects.select_related("store").get(pk=campaign.pk)
        store = locked.store
        lock_intake(store, shared=True)
        if result.order_id in known_orders(store, [result.order_id]):
            raise _already_known(store, result.order_id)
        now = timezone.now()
        order = _order_for(result, locked, store, source=source, now=now)
        order.customer_name = customer_name[: max_length_of(Order, "customer_name")]
        order.shop_ref = shop_ref
        try:
            with transaction.atomic():
                order.save()
        except IntegrityError:  # the same order id, stored a moment ago by another request
            raise _already_known(store, result.order_id) from None
        call = queue_call(
            order,
            campaign_id=locked.pk,
            scheduled_for=store.next_calling_time(now),
            actor=created_by,
            source=source,
        )
        wake_dispatcher()
    return call
