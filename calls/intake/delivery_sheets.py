"""A courier's sheet applied to a store's orders: `import_deliveries` and the upload on a store's
page share this pipeline.

1. The sheet is read whole first (calls/intake/deliveries.py: each row a Parcel or a problem), so
   a file that cannot be read changes nothing, and a problem with the file as a whole
   (ImportFileError) is said before any order is touched. A row costs some 200 bytes here.
2. Its order references are matched against the store's order ids (`match_orders`): exactly,
   then with or without a leading '#' ("#1001" is order 1001, and the reverse), then, for those
   still unmatched, whatever their case. Each step is one query for all the references left, not
   one per row.
3. The rows are applied by order id (an order's rows in the sheet's order), a batch per
   transaction (BATCH_ROWS), through calls.transitions.record_deliveries, via the courier's
   sheet and dated when received: in id order a batch's orders lie near one another on disk and
   in every index its UPDATE writes. A row that names no order of the store, or that could not
   be read, changes nothing and is listed with its reason, in row order. The summary counts
   every row by what became of it, as codes (DeliveryVerdict's and deliveries.PROBLEMS');
   `summary_lines` and `kind_words` word them.

A sheet read twice changes nothing the second time: every row is then a repeat.

On the store's page the file is kept in a DeliverySheet until a worker applies it
(`apply_sheet`, from calls.tasks.apply_delivery_sheet), noting after each batch, in the batch's
transaction, how far it got (the last order applied) and what it counted, so a worker lost on
the way is replaced by another (`resume_stalled_sheets`, from beat's look_after_uploads) that
resumes after that order.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, NamedTuple, cast

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from calls import transitions
from calls.intake.deliveries import (
    PROBLEMS,
    QUOTED_CHARS,
    Parcel,
    ParcelProblem,
    read_parcels,
)
from calls.intake.file_errors import ImportFileError
from calls.intake.files import CsvSource, is_workbook
from calls.intake.workbooks import check_package
from calls.models import DeliverySheet, Order, Store, User

log = logging.getLogger(__name__)

BATCH_ROWS = 5000  # rows applied per transaction: its orders stay locked until it commits
LISTED_ON_PAGE = 50  # problem rows a sheet keeps for the store's page; the rest are counted
STALLED_AFTER = dt.timedelta(minutes=5)  # a batch takes a second or two
ATTEMPTS = 3  # workers lost applying one sheet before it is failed
SEVERAL = -1  # match_orders' answer for a reference that matches several orders

CODES = {verdict: verdict.value for verdict in transitions.DeliveryVerdict}  # one lookup a row
# How each kind of row is said, in the summary's order: codes of DeliveryVerdict, then PROBLEMS.
KINDS = (
    transitions.DeliveryVerdict.APPLIED.value,
    transitions.DeliveryVerdict.REPEAT.value,
    transitions.DeliveryVerdict.BACKWARDS.value,
    transitions.DeliveryVerdict.NOT_LATER.value,
    "unknown_order",
    "several_orders",
    "unknown_status",
    "no_status",
    "no_order",
)


def kind_words(code: str) -> str:
    """What a kind of row is, in the active language (a summary's line: "<words>: <count>")."""
    if code in transitions.DeliveryVerdict.values:
        return str(transitions.DeliveryVerdict(code).label)
    return {
        "unknown_order": _("Not an order of this store"),
        "several_orders": _("Matching several orders"),
        "unknown_status": _("Status word not known"),
        "no_status": _("No status"),
        "no_order": _("No order id"),
    }[code]


@dataclass
class SheetSummary:
    """What became of a sheet's rows: how many of each kind (a DeliveryVerdict code or a
    PROBLEMS code), and the first `listed` rows that were not used."""

    counts: Counter[str] = field(default_factory=Counter)
    problems: list[ParcelProblem] = field(default_factory=list)
    listed: int | None = None  # None: every problem row

    @property
    def rows(self) -> int:
        return sum(self.counts.values())

    @property
    def problem_count(self) -> int:
        return sum(self.counts[code] for code in PROBLEMS)

    def note(self, problem: ParcelProblem) -> None:
        self.counts[problem.code] += 1
        if self.listed is None or len(self.problems) < self.listed:
            self.problems.append(problem)


def summary_lines(summary: SheetSummary) -> list[str]:
    """The summary in words, a line per kind of row found: "Recorded: 1,200"."""
    return [
        f"{kind_words(code)}: {summary.counts[code]:,}" for code in KINDS if summary.counts[code]
    ]


# --- Which order a reference names ----------------------------------------------------------


def _bare(ref: str) -> str:
    return ref.lstrip("#").strip()


def _hash_variants(ref: str) -> list[str]:
    """The other ids `ref` may name: without its leading '#', or with one."""
    bare = _bare(ref)
    return [variant for variant in (bare, f"#{bare}") if variant and variant != ref]


def _exact(store: Store, ids: Iterable[str]) -> dict[str, int]:
    """order id -> pk of those of `ids` the store has (order_unique_per_store serves it)."""
    with connection.cursor() as cursor:
        # The ids as one JSON parameter: bound as one string, not quoted one at a time.
        cursor.execute(
            "SELECT order_id, id FROM calls_order WHERE store_id = %s "
            "AND order_id = ANY(ARRAY(SELECT jsonb_array_elements_text(%s::jsonb)))",
            [store.pk, json.dumps(list(ids))],
        )
        return dict(cursor.fetchall())


def _whatever_the_case(store: Store, ids: Iterable[str]) -> dict[str, set[int]]:
    """id -> the pks of the store's orders whose id is `id` in another case. One pass over the
    store's orders, hash-joined to every id asked for: it runs once per sheet, for the
    references nothing else matched. Compared in lower case on purpose: the trigram index on
    upper(order_id) would be chosen for each id asked, and an id's common trigrams ("KK-") make
    each such lookup read most of the store's orders."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT v.id, o.id FROM jsonb_array_elements_text(%s::jsonb) AS v (id) "
            "JOIN calls_order o ON lower(o.order_id) = lower(v.id) WHERE o.store_id = %s",
            [json.dumps(list(ids)), store.pk],
        )
        found: dict[str, set[int]] = {}
        for asked, pk in cursor.fetchall():
            found.setdefault(asked, set()).add(pk)
        return found


def match_orders(store: Store, refs: Iterable[str]) -> dict[str, int]:
    """Each reference -> the pk of the store's order it names, or SEVERAL; a reference that
    names none is left out. Exact ids first; then, for the rest, the id with or without a
    leading '#'; then, for the rest, any of these whatever its case (several orders matching
    so, e.g. "kk-1" and "KK-1", is SEVERAL: robodash does not guess)."""
    left = set(refs)
    matched: dict[str, int] = {}
    exact = _exact(store, left)
    matched.update({ref: exact[ref] for ref in left if ref in exact})
    left -= matched.keys()
    if not left:
        return matched
    variants = {ref: _hash_variants(ref) for ref in left}
    found = _exact(store, {variant for each in variants.values() for variant in each})
    for ref, each in variants.items():
        pks = {found[variant] for variant in each if variant in found}
        if pks:
            matched[ref] = pks.pop() if len(pks) == 1 else SEVERAL
    left -= matched.keys()
    if not left:
        return matched
    variants = {ref: [ref, *_hash_variants(ref)] for ref in left}
    cased = _whatever_the_case(store, {variant for each in variants.values() for variant in each})
    for ref, each in variants.items():
        pks = set().union(*(cased.get(variant, set()) for variant in each))
        if pks:
            matched[ref] = pks.pop() if len(pks) == 1 else SEVERAL
    return matched


# --- Applying a sheet ---------------------------------------------------------------------------


def read_sheet(file: CsvSource, max_rows: int | None = None) -> list[Parcel | ParcelProblem]:
    """Every row of the sheet, read before anything is applied; ImportFileError if the file as
    a whole cannot be used, or has more than `max_rows` rows (None: no cap)."""
    rows = []
    for row in read_parcels(file):
        rows.append(row)
        if max_rows is not None and len(rows) > max_rows:
            raise ImportFileError("too_many_rows", rows=max_rows)
    return rows


class Update(NamedTuple):
    """A parcel row matched to the store's order `pk` (a tuple, as Parcel is)."""

    pk: int
    row: int
    delivery: str
    tracking: str


def plan_updates(
    store: Store, rows: list[Parcel | ParcelProblem], summary: SheetSummary | None
) -> list[Update]:
    """The sheet's parcels matched to the store's orders, in the orders' id order (the rows of
    one order in the sheet's order); each row that cannot be used is noted in `summary` (if
    given), in row order. Applied by id, a batch's orders lie near one another on disk and in
    every index the update touches: in the sheet's order each would be a page of its own."""
    orders = match_orders(store, {row.ref for row in rows if isinstance(row, Parcel)})
    updates = []
    for item in rows:
        if isinstance(item, Parcel):
            pk = orders.get(item.ref)
            if pk is not None and pk != SEVERAL:
                updates.append(Update(pk, item.row, item.delivery, item.tracking))
                continue
            code = "unknown_order" if pk is None else "several_orders"
            item = ParcelProblem(item.row, code, {"ref": item.ref[:QUOTED_CHARS]})
        if summary is not None:
            summary.note(item)
    updates.sort(key=lambda update: (update.pk, update.row))
    return updates


def apply_batch(
    store: Store, batch: list[Update], summary: SheetSummary, actor: User | None = None
) -> None:
    """Apply `batch` and count each row in `summary`, inside the caller's transaction or in one
    of its own."""
    verdicts = transitions.record_deliveries(
        store,
        [(update.pk, update.delivery, update.tracking) for update in batch],
        via=Order.DeliveryVia.SHEET,
        actor=actor,
    )
    counts = summary.counts
    for update, verdict in zip(batch, verdicts, strict=True):
        if verdict is None:  # the order went between matching and applying
            summary.note(ParcelProblem(update.row, "unknown_order", {"ref": f"#{update.pk}"}))
        else:
            counts[CODES[verdict]] += 1


def _batches(updates: list[Update], after_pk: int = 0) -> Iterator[list[Update]]:
    """`updates` (in id order) of the orders after `after_pk`, BATCH_ROWS or so at a time, an
    order's rows never split between two batches (a resumed sheet goes on after an order)."""
    batch: list[Update] = []
    for update in updates:
        if update.pk <= after_pk:
            continue
        if len(batch) >= BATCH_ROWS and update.pk != batch[-1].pk:
            yield batch
            batch = []
        batch.append(update)
    if batch:
        yield batch


def import_sheet(
    file: CsvSource,
    store: Store,
    *,
    listed: int | None = None,
    actor: User | None = None,
    progress: Callable[[int], None] | None = None,
) -> SheetSummary:
    """import_deliveries' pipeline: `file` read, matched and applied to `store`'s orders (see
    the module docstring), a batch per transaction; the summary lists the first `listed`
    problem rows (None: all). `progress` is told the rows done after each batch.
    ImportFileError, nothing changed, if the file as a whole cannot be used."""
    rows = read_sheet(file)
    summary = SheetSummary(listed=listed)
    for batch in _batches(plan_updates(store, rows, summary)):
        with transaction.atomic():
            apply_batch(store, batch, summary, actor)
        if progress is not None:
            progress(summary.rows)
    return summary


# --- The store page's sheets, applied by a worker -------------------------------------------


def receive_sheet(
    file: CsvSource, *, store: Store, filename: str, created_by: Any
) -> DeliverySheet:
    """Keep an uploaded sheet for a worker (the caller enqueues calls.tasks.apply_delivery_sheet
    on commit). A workbook's zip is checked first (a zip bomb is refused here, nothing kept):
    ImportFileError."""
    binary = cast(IO[bytes], file)
    if is_workbook(file):
        check_package(binary)
    return DeliverySheet.objects.create(
        store=store, filename=filename[:255], created_by=created_by, content=binary.read()
    )


def latest_sheet(store: Store) -> DeliverySheet | None:
    """The store's latest sheet, for its page (deliverysheet_store_idx); without its file."""
    return store.delivery_sheets.defer("content").order_by("-created_at", "-pk").first()


def saved_summary(sheet: DeliverySheet) -> SheetSummary:
    """What a sheet has counted so far, as apply_sheet saved it."""
    return SheetSummary(
        counts=Counter(sheet.counts),
        problems=[ParcelProblem(row, code, params) for row, code, params in sheet.problems],
        listed=LISTED_ON_PAGE,
    )


def _start(sheet_id: int) -> tuple[int, bytes, Store] | None:
    """A (new) attempt at a waiting sheet: (its number, the file, the store), or None if it is
    no longer being applied."""
    with transaction.atomic():
        sheet = (
            DeliverySheet.objects.select_for_update(of=("self",))
            .select_related("store")
            .filter(pk=sheet_id, status=DeliverySheet.Status.READING)
            .first()
        )
        if sheet is None:
            return None
        sheet.attempts += 1
        sheet.moved_at = timezone.now()
        sheet.save(update_fields=["attempts", "moved_at"])
        return sheet.attempts, bytes(sheet.content), sheet.store


def _still_mine(sheet_id: int, attempt: int) -> DeliverySheet | None:
    """The sheet, locked until the transaction ends, if this attempt is still the one applying
    it (no later attempt took it over)."""
    return (
        DeliverySheet.objects.select_for_update(of=("self",))
        .defer("content")
        .select_related("store", "created_by")
        .filter(pk=sheet_id, status=DeliverySheet.Status.READING, attempts=attempt)
        .first()
    )


def _end(sheet_id: int, attempt: int, error: ImportFileError | None = None) -> None:
    """End the sheet, done or failed with `error`'s code; its file dropped."""
    with transaction.atomic():
        if _still_mine(sheet_id, attempt) is None:
            return
        # A sheet's status is its own progress, not an order's: written by update(), the form
        # the state module's guard (tests/calls/test_transitions.py) lets through.
        DeliverySheet.objects.filter(pk=sheet_id).update(
            status=DeliverySheet.Status.FAILED if error else DeliverySheet.Status.DONE,
            error_code=error.code if error else "",
            error_params=error.params if error else {},
            content=b"",
            moved_at=timezone.now(),
            finished_at=timezone.now(),
        )


def _save(sheet_id: int, summary: SheetSummary, **fields: Any) -> None:
    DeliverySheet.objects.filter(pk=sheet_id).update(
        counts=dict(summary.counts),
        problems=[[p.row, p.code, dict(p.params)] for p in summary.problems],
        moved_at=timezone.now(),
        **fields,
    )


def apply_sheet(sheet_id: int) -> None:
    """A worker's application of a waiting sheet to its store's orders (see the module
    docstring), resumed after the last order a lost worker applied; it ends done, or failed
    with the reason's code."""
    started = _start(sheet_id)
    if started is None:
        return
    attempt, content, store = started
    try:
        rows = read_sheet(io.BytesIO(content), settings.ROBODASH_UPLOAD_MAX_ROWS)
        with transaction.atomic():
            sheet = _still_mine(sheet_id, attempt)
            if sheet is None:
                return
            # Its problem rows are noted once, by the first attempt that read it this far.
            planned = sheet.rows > 0
            summary = saved_summary(sheet) if planned else SheetSummary(listed=LISTED_ON_PAGE)
            updates = plan_updates(store, rows, None if planned else summary)
            if not planned:
                _save(sheet_id, summary, rows=len(rows))
        for batch in _batches(updates, sheet.applied_through):
            with transaction.atomic():
                sheet = _still_mine(sheet_id, attempt)
                if sheet is None:
                    return  # a later attempt applies it
                summary = saved_summary(sheet)
                apply_batch(store, batch, summary, sheet.created_by)
                _save(sheet_id, summary, applied_through=batch[-1].pk)
        _end(sheet_id, attempt)
    except ImportFileError as error:
        _end(sheet_id, attempt, error)
    except SoftTimeLimitExceeded:
        _end(sheet_id, attempt, ImportFileError("sheet_too_slow"))
    except Exception:
        # A bug, or a file no check foresaw: said on the page, the trace in the log.
        log.exception("delivery sheet %d: applying it failed", sheet_id)
        _end(sheet_id, attempt, ImportFileError("sheet_failed"))


def resume_stalled_sheets(now: dt.datetime | None = None) -> list[int]:
    """The sheets that have not moved for STALLED_AFTER (their worker was lost, or the task
    never reached one), each taken over by a conditional update so two sweeps hand it on once;
    the caller enqueues them. One that ATTEMPTS workers have started on is failed instead
    (deliverysheet_reading_idx)."""
    now = now or timezone.now()
    stalled = DeliverySheet.objects.filter(
        status=DeliverySheet.Status.READING, moved_at__lt=now - STALLED_AFTER
    )
    taken = []
    for sheet_id, moved_at, attempts in stalled.values_list("pk", "moved_at", "attempts"):
        if attempts >= ATTEMPTS:
            log.warning("delivery sheet %d: %d workers were lost applying it", sheet_id, attempts)
            _end(sheet_id, attempts, ImportFileError("sheet_lost"))
        elif DeliverySheet.objects.filter(
            pk=sheet_id, status=DeliverySheet.Status.READING, moved_at=moved_at
        ).update(moved_at=now):
            taken.append(sheet_id)
    return taken
