"""Uploads on the new-campaign page: the file read once into the database, its preview, its
launch.

`stage_upload` streams the file (CSV or .xlsx) through the one validation path
(`files.validated_rows`) into UploadRow by COPY: every valid row with its values (and, as its
reason, a warning if a cell looks like a spreadsheet formula), every rejected row with its
reasons. Repeats within the file and orders the store already has are then marked in SQL.
Nothing but counters is held in Python, so memory does not grow with the file, and a file over
ROBODASH_UPLOAD_MAX_ROWS is refused with nothing stored.

Where it is read (`receive_upload`): a CSV within the request, as it arrives. Its cost is its
bytes, which the upload limit bounds (200,000 rows read in about 3 s, in constant memory), and
the merchant sees the preview at once. A workbook's cost is what it expands to, not its bytes
(calls/intake/workbooks.py bounds it, but a workbook at the caps still takes openpyxl seconds per
100,000 rows), so it never runs in a web process: it waits in UploadFile (web and worker share
only the database) and a worker reads it (`read_upload`, from `calls.tasks.read_upload`) a
batch of rows per transaction, noting how far it got for the page's progress bar. The file is
deleted in the transaction that ends the reading, previewed or failed with the reason's code.
A reading that stops moving (its worker was lost: a task is not redelivered) is handed to a
worker again by beat (`resume_stalled_readings`); it starts over, and a reader that finds a
later attempt has started stops writing.

`launch_upload` turns a claimed upload's valid rows into orders and queued calls, a batch per
transaction under the store's intake lock (orders that became known since the preview are
skipped then). The upload records how far it got, so the campaign page shows the progress and a
launch that was cut off resumes where it stopped without adding an order twice. A small launch
runs within the request; a large one in a worker (`calls.tasks.launch_upload`).
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import json
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, cast

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from calls import launches
from calls.intake.bulk import BATCH_SIZE, CopyWriter, add_orders
from calls.intake.file_errors import ImportFileError
from calls.intake.files import CsvSource, is_workbook, validated_rows
from calls.intake.known import KnownRow, known_orders, known_reason
from calls.intake.rows import OrderRow, RowError, formula_warning
from calls.intake.storable_text import storable
from calls.intake.workbooks import check_package
from calls.models import Campaign, Upload, UploadFile, UploadRow
from calls.pipeline.dispatch import wake_dispatcher

log = logging.getLogger(__name__)

ABANDONED_AFTER = dt.timedelta(days=1)  # a preview nobody launched is deleted after this
# A batch takes well under a second (a reading's first, after openpyxl has opened the workbook,
# a few seconds): a launch or reading that has not moved for this long lost its worker.
STALLED_AFTER = dt.timedelta(minutes=5)
READ_BATCH_ROWS = 5000  # rows staged per transaction of a worker's reading
READ_ATTEMPTS = 3  # workers lost reading one workbook before it is failed
REASON_MAX_CHARS = 1000  # a 100 kB cell quoted in a reason is cut here
PROGRESS_EVERY = 10_000  # rows read between two calls of a reading's `progress`

_STAGED = (
    *("row", "kind", "reason", "order_id", "phone", "amount", "store_name", "voice_id"),
    "placed_at",
)
# Plain strings: psycopg would write an Enum member (a TextChoices) by its name.
VALID, REJECTED = UploadRow.Kind.VALID.value, UploadRow.Kind.REJECTED.value


class TooManyRows(ImportFileError):
    """The file has more data rows than one upload may have."""


def _staged_rows(
    file: CsvSource,
    max_rows: int,
    zone: dt.tzinfo,
    on_sheet_size: Callable[[int], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Iterator[tuple[Any, ...]]:
    """The COPY rows of `file` (the _STAGED fields, then extras as JSON), one at a time;
    `progress` is called with the rows read so far every PROGRESS_EVERY rows; a placed time
    without an offset is in `zone`, the store's."""
    total = 0
    for result in validated_rows(file, on_sheet_size, zone):
        total += 1
        if total > max_rows:
            raise TooManyRows("too_many_rows", rows=max_rows)
        if progress and total % PROGRESS_EVERY == 0:
            progress(total)
        if isinstance(result, RowError):
            reason = storable(result.message)[:REASON_MAX_CHARS]
            yield (result.row, REJECTED, reason, "", "", None, "", None, None, "{}")
            continue
        yield (
            result.row,
            VALID,
            formula_warning(result),  # a valid row's reason is its warning, if any
            result.order_id,
            result.phone,
            result.amount,
            result.store_name,
            result.voice_id,
            result.placed_at,
            json.dumps(dict(result.extras)),
        )


def _mark_duplicates(upload: Upload) -> None:
    """A valid row whose order id an earlier valid row has is a duplicate (served by
    uploadrow_order_id_idx)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE calls_uploadrow u SET kind = %s, reason = 'repeats row ' || f.first "
            "FROM (SELECT id, row, min(row) OVER (PARTITION BY order_id) AS first "
            "      FROM calls_uploadrow WHERE upload_id = %s AND kind = %s) f "
            "WHERE u.id = f.id AND f.row > f.first",
            [UploadRow.Kind.DUPLICATE.value, upload.pk, VALID],
        )


def _mark_known(upload: Upload, store_id: int) -> None:
    """A valid row whose order the store already has is known (served by
    order_unique_per_store). Its reason is worded when it is shown (known_rows), from the order
    as it is then."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE calls_uploadrow u SET kind = %s, reason = '' FROM calls_order o "
            "WHERE u.upload_id = %s AND u.kind = %s AND o.store_id = %s "
            "  AND o.order_id = u.order_id",
            [UploadRow.Kind.KNOWN.value, upload.pk, VALID, store_id],
        )


def _count_rows(upload: Upload) -> None:
    counts = dict(
        UploadRow.objects.filter(upload=upload)
        .values_list("kind")
        .annotate(n=Count("id"))
        .values_list("kind", "n")
    )
    upload.valid_rows = counts.get(UploadRow.Kind.VALID, 0)
    upload.rejected_rows = counts.get(UploadRow.Kind.REJECTED, 0)
    upload.duplicate_rows = counts.get(UploadRow.Kind.DUPLICATE, 0)
    upload.known_rows = counts.get(UploadRow.Kind.KNOWN, 0)
    upload.total_rows = sum(counts.values())


# An upload of these is the campaign's next: a new upload replaces it.
WAITING = (Upload.Status.READING, Upload.Status.FAILED, Upload.Status.PREVIEWED)


def sweep_abandoned_uploads(now: dt.datetime | None = None) -> int:
    """Delete uploads nobody launched within ABANDONED_AFTER (previews, failed readings, and a
    workbook never read), with their rows and files."""
    cutoff = (now or timezone.now()) - ABANDONED_AFTER
    deleted, _ = Upload.objects.filter(status__in=WAITING, created_at__lt=cutoff).delete()
    return deleted


def _replace_waiting(
    campaign: Campaign, filename: str, created_by: Any, *, replacing: bool = True, **fields: Any
) -> Upload:
    if replacing:
        Upload.objects.filter(campaign=campaign, status__in=WAITING).delete()
    return Upload.objects.create(
        campaign=campaign, filename=filename[:255], created_by=created_by, **fields
    )


def _stage_rows(upload: Upload, rows: Iterator[tuple[Any, ...]]) -> None:
    CopyWriter(UploadRow(upload=upload), (*_STAGED, "extras")).write(rows)


def _mark_and_count(upload: Upload) -> None:
    _mark_duplicates(upload)
    _mark_known(upload, upload.campaign.store_id)
    _count_rows(upload)


def stage_upload(
    file: CsvSource,
    *,
    campaign: Campaign,
    filename: str,
    created_by: Any = None,
    max_rows: int | None = None,
    replacing: bool = True,
    progress: Callable[[int], None] | None = None,
) -> Upload:
    """Read `file` once, here, into a new Upload of `campaign` (replacing the one waiting
    there, unless not `replacing`). ImportFileError (TooManyRows over the cap) if the file as a
    whole is unusable: nothing is stored then. Run it inside the caller's transaction or on its
    own. `progress` as for _staged_rows."""
    limit = settings.ROBODASH_UPLOAD_MAX_ROWS if max_rows is None else max_rows
    sweep_abandoned_uploads()
    with transaction.atomic():
        upload = _replace_waiting(campaign, filename, created_by, replacing=replacing)
        zone = campaign.store.zone
        _stage_rows(upload, _staged_rows(file, limit, zone, progress=progress))
        _mark_and_count(upload)
        upload.save()
    return upload


def receive_upload(
    file: CsvSource, *, campaign: Campaign, filename: str, created_by: Any = None
) -> Upload:
    """The upload page's file: a CSV staged at once; a workbook, once its zip's declared
    sizes pass (calls/intake/workbooks.py: a zip bomb is refused here, nothing stored), kept for a
    worker to read (`reading`: the caller enqueues calls.tasks.read_upload on commit).
    ImportFileError as for stage_upload. Run it inside the caller's transaction."""
    if not is_workbook(file):
        return stage_upload(file, campaign=campaign, filename=filename, created_by=created_by)
    binary = cast(IO[bytes], file)
    check_package(binary)
    sweep_abandoned_uploads()
    upload = _replace_waiting(
        campaign,
        filename,
        created_by,
        status=Upload.Status.READING,
        read_moved_at=timezone.now(),
    )
    UploadFile.objects.create(upload=upload, content=binary.read())
    return upload


def _start_reading(upload_id: int) -> tuple[int, bytes, dt.tzinfo] | None:
    """Start a (new) attempt at reading a waiting workbook, dropping an earlier attempt's
    rows: (the attempt's number, the file, the store's zone), or None if it is no longer being
    read."""
    with transaction.atomic():
        upload = (
            Upload.objects.select_for_update(of=("self",))
            .select_related("campaign__store")
            .filter(pk=upload_id, status=Upload.Status.READING)
            .first()
        )
        stored = UploadFile.objects.filter(upload_id=upload_id).first()
        if upload is None or stored is None:
            return None
        upload.rows.all()._raw_delete(connection.alias)
        upload.read_attempts += 1
        upload.read_through_row = 0
        upload.read_moved_at = timezone.now()
        upload.save(update_fields=["read_attempts", "read_through_row", "read_moved_at"])
        return upload.read_attempts, bytes(stored.content), upload.campaign.store.zone


def _still_mine(upload_id: int, attempt: int) -> Upload | None:
    """The upload, locked until the transaction ends, if this attempt is still the one that
    reads it (not replaced, discarded, or handed to a later attempt)."""
    return (
        Upload.objects.select_for_update(of=("self",))
        .select_related("campaign")
        .filter(pk=upload_id, status=Upload.Status.READING, read_attempts=attempt)
        .first()
    )


def _fail_reading(upload_id: int, attempt: int, error: ImportFileError) -> None:
    """End the reading as failed with `error`'s code: no row and no file kept."""
    with transaction.atomic():
        upload = _still_mine(upload_id, attempt)
        if upload is None:
            return
        upload.rows.all()._raw_delete(connection.alias)
        UploadFile.objects.filter(upload_id=upload_id).delete()
        Upload.objects.filter(pk=upload.pk).update(
            status=Upload.Status.FAILED,
            error_code=error.code,
            error_params=error.params,
            read_moved_at=timezone.now(),
        )


def _finish_reading(upload_id: int, attempt: int) -> None:
    """End the reading as previewed: duplicates and known orders marked, counted, file gone."""
    with transaction.atomic():
        upload = _still_mine(upload_id, attempt)
        if upload is None:
            return
        _mark_and_count(upload)
        UploadFile.objects.filter(upload_id=upload_id).delete()
        upload.read_through_row = upload.sheet_rows or upload.read_through_row
        upload.read_moved_at = timezone.now()
        upload.save()
        # An upload's status is a batch's, not a call's or an order's: written by update(), the
        # form the state module's guard (tests/calls/test_transitions.py) lets through.
        Upload.objects.filter(pk=upload.pk).update(status=Upload.Status.PREVIEWED)


def read_upload(upload_id: int, *, max_rows: int | None = None) -> None:
    """A worker's reading of a waiting workbook into its rows (see the module docstring): it
    ends previewed, or failed with the reason's code; a later attempt takes over silently."""
    limit = settings.ROBODASH_UPLOAD_MAX_ROWS if max_rows is None else max_rows
    started = _start_reading(upload_id)
    if started is None:
        return
    attempt, content, zone = started

    def note_size(rows: int) -> None:
        Upload.objects.filter(pk=upload_id, read_attempts=attempt).update(
            sheet_rows=rows, read_moved_at=timezone.now()
        )

    try:
        rows = _staged_rows(io.BytesIO(content), limit, zone, note_size)
        while batch := list(itertools.islice(rows, READ_BATCH_ROWS)):
            with transaction.atomic():
                upload = _still_mine(upload_id, attempt)
                if upload is None:
                    return  # replaced, discarded, or a later attempt reads it
                _stage_rows(upload, iter(batch))
                upload.read_through_row = batch[-1][0]
                upload.read_moved_at = timezone.now()
                upload.save(update_fields=["read_through_row", "read_moved_at"])
        _finish_reading(upload_id, attempt)
    except ImportFileError as error:
        _fail_reading(upload_id, attempt, error)
    except SoftTimeLimitExceeded:
        _fail_reading(upload_id, attempt, ImportFileError("read_too_slow"))
    except Exception:
        # A bug, or a file no check foresaw: said on the page, the trace in the log (a
        # workbook holds no secret), and not handed to a worker again.
        log.exception("upload %d: reading the workbook failed", upload_id)
        _fail_reading(upload_id, attempt, ImportFileError("read_failed"))


def resume_stalled_readings(now: dt.datetime | None = None) -> list[int]:
    """The readings that have not moved for STALLED_AFTER (their worker was lost, or the
    task never reached one), each taken over by a conditional update so two sweeps hand it on
    once; the caller enqueues them. One that READ_ATTEMPTS workers have started on is failed
    instead: it is likely what stops them (upload_reading_moved_idx)."""
    now = now or timezone.now()
    stalled = Upload.objects.filter(
        status=Upload.Status.READING, read_moved_at__lt=now - STALLED_AFTER
    )
    taken = []
    for upload_id, moved_at, attempts in stalled.values_list(
        "pk", "read_moved_at", "read_attempts"
    ):
        if attempts >= READ_ATTEMPTS:
            log.warning("upload %d: %d workers were lost reading it; failed", upload_id, attempts)
            _fail_reading(upload_id, attempts, ImportFileError("read_lost"))
        elif Upload.objects.filter(
            pk=upload_id, status=Upload.Status.READING, read_moved_at=moved_at
        ).update(read_moved_at=now):
            taken.append(upload_id)
    return taken


def pending_upload(campaign: Campaign) -> Upload | None:
    """The upload waiting for the campaign's launch, if any (upload_campaign_status_idx)."""
    return campaign.uploads.filter(status=Upload.Status.PREVIEWED).order_by("-pk").first()


def waiting_upload(campaign: Campaign) -> Upload | None:
    """The campaign's next upload, read or not (upload_campaign_status_idx): the one its
    launch page shows, being read, failed, or waiting for the launch."""
    return campaign.uploads.filter(status__in=WAITING).order_by("-pk").first()


def launching_upload(campaign: Campaign) -> Upload | None:
    return campaign.uploads.filter(status=Upload.Status.LAUNCHING).order_by("-pk").first()


def claim_upload(upload: Upload) -> bool:
    """Mark `upload` launching; False if someone launched (or discarded) it first. The
    conditional update's row count says who won, so a launch never runs twice."""
    return bool(
        Upload.objects.filter(pk=upload.pk, status=Upload.Status.PREVIEWED).update(
            status=Upload.Status.LAUNCHING, launch_moved_at=timezone.now()
        )
    )


def _order_of(row: UploadRow) -> OrderRow:
    assert row.amount is not None  # a valid row has one
    return OrderRow(
        row=row.row,
        phone=row.phone,
        amount=row.amount,
        order_id=row.order_id,
        store_name=row.store_name,
        voice_id=row.voice_id,
        extras=row.extras,
        placed_at=row.placed_at,
    )


def _launch_next_batch(upload_id: int, run_campaign: bool = True) -> bool:
    """Add the next batch of a launching upload's valid rows; False once there are none."""
    with transaction.atomic():
        upload = (
            Upload.objects.select_for_update(of=("self",))
            .select_related("campaign__store")
            .get(pk=upload_id)
        )
        if upload.status != Upload.Status.LAUNCHING:
            return False
        batch = list(
            upload.rows.filter(
                kind=UploadRow.Kind.VALID, row__gt=upload.launched_through_row
            ).order_by("row")[:BATCH_SIZE]
        )
        if not batch:
            _finish_launch(upload, run_campaign)
            return False
        added, known = add_orders(
            [_order_of(row) for row in batch], upload.campaign, actor_id=upload.created_by_id
        )
        upload.launched_through_row = batch[-1].row
        upload.launched_rows += len(batch)
        upload.imported_rows += added
        upload.known_at_launch += known
        upload.launch_moved_at = timezone.now()
        upload.save(
            update_fields=[
                "launched_through_row",
                "launched_rows",
                "imported_rows",
                "known_at_launch",
                "launch_moved_at",
            ]
        )
        return True


def _finish_launch(upload: Upload, run_campaign: bool) -> None:
    """Run the campaign (a paused one stays paused), if asked to, and drop the staged rows."""
    if run_campaign:
        launches.start(upload.campaign)
    Upload.objects.filter(pk=upload.pk).update(
        status=Upload.Status.LAUNCHED, launched_at=timezone.now()
    )
    upload.rows.all()._raw_delete(connection.alias)  # no signals or cascades: one DELETE


def launch_upload(upload_id: int, *, run_campaign: bool = True) -> Upload:
    """Launch a claimed upload to the end (see the module docstring); safe to run again.
    Not `run_campaign`: its calls are queued and the campaign's status is left to the caller
    (import_file, whose launch is one transaction, so no worker resumes it meanwhile)."""
    while _launch_next_batch(upload_id, run_campaign):
        pass
    return Upload.objects.get(pk=upload_id)


def resume_stalled_launches(now: dt.datetime | None = None) -> list[int]:
    """The launches that have not moved for STALLED_AFTER (their worker was lost: a task is not
    redelivered), each taken over by a conditional update so two sweeps hand it on once. The
    caller enqueues them; a launch resumes after its last batch (upload_launching_moved_idx)."""
    now = now or timezone.now()
    stalled = Upload.objects.filter(
        status=Upload.Status.LAUNCHING, launch_moved_at__lt=now - STALLED_AFTER
    )
    taken = []
    for upload_id, moved_at in stalled.values_list("pk", "launch_moved_at"):
        if Upload.objects.filter(pk=upload_id, launch_moved_at=moved_at).update(
            launch_moved_at=now
        ):
            taken.append(upload_id)
    return taken


# --- Listing and importing: the rows a page or import_calls shows, and import_calls' pipeline ----


@dataclass(frozen=True)
class DuplicateRow:
    """A row whose order id an earlier row of the same file already has."""

    row: int
    order_id: str
    reason: str  # "repeats row 4"

    def __str__(self) -> str:
        return f"row {self.row}: order {self.order_id!r} {self.reason}, skipped"


def known_rows(upload: Upload, limit: int) -> list[KnownRow]:
    """The first `limit` rows of `upload` whose order the store already has, each with
    known_reason() worded now from the order (uploadrow_unique_kind_row, then
    order_unique_per_store serve it)."""
    rows = list(
        upload.rows.filter(kind=UploadRow.Kind.KNOWN)
        .order_by("row")
        .values_list("row", "order_id")[:limit]
    )
    store = upload.campaign.store
    found = known_orders(store, [order_id for _row, order_id in rows])
    return [
        KnownRow(row, order_id, known_reason(*found[order_id], store))
        for row, order_id in rows
        if order_id in found  # an order deleted since the file was read is no longer known
    ]


@dataclass
class ImportReport:
    """What import_file did with a file: counts, every rejected row, and the first `listed`
    repeated and known rows."""

    total_rows: int = 0
    imported: int = 0
    known_count: int = 0  # marked when the file was read, and found at the launch
    skipped_duplicates: int = 0
    rejected: list[RowError] = field(default_factory=list)
    duplicates: list[DuplicateRow] = field(default_factory=list)
    known: list[KnownRow] = field(default_factory=list)


def _staged_report(upload: Upload, listed: int) -> ImportReport:
    rows = upload.rows.order_by("row")
    return ImportReport(
        total_rows=upload.total_rows,
        known_count=upload.known_rows,
        skipped_duplicates=upload.duplicate_rows,
        rejected=[
            RowError(row, reason)
            for row, reason in rows.filter(kind=UploadRow.Kind.REJECTED).values_list(
                "row", "reason"
            )
        ],
        duplicates=[
            DuplicateRow(*values)
            for values in rows.filter(kind=UploadRow.Kind.DUPLICATE).values_list(
                "row", "order_id", "reason"
            )[:listed]
        ],
        known=known_rows(upload, listed),
    )


def import_file(
    file: CsvSource,
    *,
    campaign: Campaign,
    filename: str = "",
    created_by: Any = None,
    progress: Callable[[int], None] | None = None,
    listed: int = 20,
) -> ImportReport:
    """import_calls' pipeline, the upload page's own steps in one transaction (all or nothing):
    `file` staged as an upload (stage_upload: rows checked, repeats and known orders marked in
    SQL), then launched as the page launches one (claim_upload, launch_upload), except that the
    campaign's status is left to the caller, which checks the balance after (calls/launches.py).

    The file is the operator's, on the server: it is not held to the page's row cap, and a
    preview waiting on the campaign's page is kept. ImportFileError, nothing stored, when the
    file as a whole is unusable.
    """
    with transaction.atomic():
        upload = stage_upload(
            file,
            campaign=campaign,
            filename=filename,
            created_by=created_by,
            max_rows=sys.maxsize,
            replacing=False,
            progress=progress,
        )
        report = _staged_report(upload, listed)
        claimed = claim_upload(upload)
        assert claimed  # staged in this transaction: nobody else has seen it
        launched = launch_upload(upload.pk, run_campaign=False)
        report.imported = launched.imported_rows
        report.known_count += launched.known_at_launch
        if report.imported:
            wake_dispatcher()  # on commit: a running campaign's new calls are due
    return report
