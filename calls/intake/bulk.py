"""A file's orders into calls at once: the CSV import (import_calls) and an upload's launch.

Each new row becomes an order of the store and its first call. An order id the store already
has is "already known" (calls/intake/known.py) and places no call; an order id earlier in the
same file is a duplicate. Neither is an error.

The file is read as a stream and inserted in batches inside one transaction, so a 100,000-row
file neither sits in memory nor leaves half an import behind when something fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, models, transaction
from django.utils import timezone

from calls.intake.files import CsvSource, validated_rows
from calls.intake.known import KnownRow, has_orders, known_orders, lock_intake
from calls.intake.rows import MESSAGE_FIELDS, OrderRow, RowError, message_values
from calls.models import Call, CallEvent, Campaign, Order, Store
from calls.pipeline.dispatch import wake_dispatcher

BATCH_SIZE = 2000  # rows per lookup of known orders and per INSERT
PROGRESS_EVERY = 10_000


@dataclass(frozen=True)
class DuplicateRow:
    """An order id that an earlier row of the same file already has."""

    row: int
    order_id: str
    reason: str  # "repeats row 4"

    def __str__(self) -> str:
        return f"row {self.row}: order {self.order_id!r} {self.reason}, skipped"


@dataclass
class ImportReport:
    imported: int = 0
    skipped_duplicates: int = 0
    rejected: list[RowError] = field(default_factory=list)
    total_rows: int = 0
    duplicates: list[DuplicateRow] = field(default_factory=list)
    known: list[KnownRow] = field(default_factory=list)


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


# --- Writing the orders and their calls ---------------------------------------------------------
#
# bulk_create spends most of a big import preparing every field of every row in Python (about
# 3,500 rows/s here). The orders, calls and events go in through COPY instead, the fields that
# are the same on every row prepared once; ids are taken from the tables' sequences first so
# each call knows its order and each event its call.

_ORDER_VARYING = ("id", *MESSAGE_FIELDS)
_CALL_VARYING = ("id", "shop_order_id", *MESSAGE_FIELDS)


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
        messages = [message_values(order, campaign, store) for order in batch]
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
            _new_orders(file, store if has_orders(store) else None, tally, progress),
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
