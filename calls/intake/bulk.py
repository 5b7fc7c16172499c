"""A batch of a file's orders into calls at once: each batch of an upload's launch (the upload
page's and import_calls', calls/intake/uploads.py).

Each new row becomes an order of the store, judged by the store's rules (calls/intake/judging.py,
one history query per batch), and, unless they skip or hold it, its first call. An order id the
store already has is "already known" (calls/intake/known.py) and places no call.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import connection, models
from django.utils import timezone

from calls.intake.judging import judge_new_orders
from calls.intake.known import known_orders, lock_intake
from calls.intake.rows import MESSAGE_FIELDS, OrderRow, message_values
from calls.models import Call, CallEvent, Campaign, Order, Store
from calls.rules import OrderFacts
from calls.transitions import judged_state, record_judged

BATCH_SIZE = 2000  # rows per lookup of known orders and per INSERT


# --- Writing the orders and their calls ---------------------------------------------------------
#
# bulk_create spends most of a big import preparing every field of every row in Python (about
# 3,500 rows/s here). The orders, calls and events go in through COPY instead, the fields that
# are the same on every row prepared once; ids are taken from the tables' sequences first so
# each call knows its order and each event its call.

# What the store's rules made of each order (calls/transitions.py judged_state), the reasons last.
_JUDGED_FIELDS = ("verdict", "status", "followup", "followup_at", "verdict_reasons")
_ORDER_VARYING = ("id", *MESSAGE_FIELDS, "placed_at", "duplicate_of_id", *_JUDGED_FIELDS)
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
) -> tuple[int, int]:
    """The batches' orders, each judged by the store's rules (one history query per batch), and
    the queued calls of those to call: (orders added, calls queued)."""
    orders = CopyWriter(
        Order(
            store_id=store.pk,
            campaign_id=campaign.pk,
            source=Order.Source.CSV,
            created_at=now,
            arrived_at=now,
        ),
        _ORDER_VARYING,
    )
    calls = CopyWriter(
        Call(store_id=store.pk, campaign_id=campaign.pk, scheduled_for=due, created_at=now),
        _CALL_VARYING,
    )
    events = _CreatedEvents(CallEvent(at=now, kind=CallEvent.Kind.CREATED, actor_id=actor_id))
    reasons_field = Order._meta.get_field("verdict_reasons")
    inserted = queued = 0
    for batch in batches:
        judgements = judge_new_orders(
            store, [OrderFacts(row.phone, row.amount, row.placed_at, now) for row in batch], now
        )
        verdicts = [judged.verdict for judged in judgements]
        order_ids = _reserve_ids(Order, len(batch))
        duplicates = [
            order_ids[judged.repeats] if judged.repeats is not None else judged.duplicate_of
            for judged in judgements
        ]
        messages = [message_values(order, campaign, store) for order in batch]
        judged = [judged_state(verdict, now) for verdict in verdicts]
        orders.write(
            (
                order_id,
                *message,
                order.placed_at,
                duplicate_of,
                *(state[name] for name in _JUDGED_FIELDS[:-1]),
                reasons_field.get_db_prep_save(state["verdict_reasons"], connection),
            )
            for order_id, message, order, duplicate_of, state in zip(
                order_ids, messages, batch, duplicates, judged, strict=True
            )
        )
        to_call = [
            (order_id, message, order.row)
            for order_id, message, order, verdict in zip(
                order_ids, messages, batch, verdicts, strict=True
            )
            if verdict.kind == Order.Verdict.CALL
        ]
        call_ids = _reserve_ids(Call, len(to_call)) if to_call else []
        calls.write(
            (call_id, order_id, *message)
            for call_id, (order_id, message, _row) in zip(call_ids, to_call, strict=True)
        )
        events.write(call_ids, [row for _order, _message, row in to_call])
        record_judged(list(zip(order_ids, verdicts, strict=True)), now)
        inserted += len(batch)
        queued += len(to_call)
    return inserted, queued


def add_orders(
    orders: list[OrderRow], campaign: Campaign, *, actor_id: int | None
) -> tuple[int, int]:
    """One batch of an upload's launch, in the caller's transaction: those of `orders` the
    campaign's store does not have yet become orders and queued calls; (added, already known).
    Takes the store's intake lock until the transaction ends, so a batch and any other intake
    cannot both add the same order."""
    store = campaign.store
    lock_intake(store)
    known = known_orders(store, [order.order_id for order in orders])
    new = [order for order in orders if order.order_id not in known]
    now = timezone.now()
    added, _queued = _insert_by_copy(
        [new] if new else [], campaign, store, now, store.first_call_time(now, now), actor_id
    )
    return added, len(orders) - len(new)
