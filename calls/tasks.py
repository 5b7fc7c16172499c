"""Celery tasks: thin wrappers that take ids and call the pipeline's plain functions."""

import logging

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from calls import order_batches
from calls.intake import delivery_sheets, uploads
from calls.models import Store
from calls.pipeline import balances, dispatch, polling

log = logging.getLogger(__name__)

# A send or poll is one provider request plus a few queries; the limits leave room for the
# request's own timeouts, and a hard kill mid-send is handled by the sending lease anyway.
_REQUEST_LIMIT = int(settings.ROBOCALL_CONNECT_TIMEOUT + settings.ROBOCALL_READ_TIMEOUT) + 30


@shared_task(ignore_result=True, soft_time_limit=50, time_limit=60)
def sweep_due_work() -> None:
    """Find due work in Postgres and hand it to workers. Run by beat every few seconds."""
    now = timezone.now()
    expired = dispatch.expire_sending_leases(now)
    moved = dispatch.reschedule_outside_hours(now)
    sends = dispatch.claim_due_sends(now)
    polls = polling.claim_due_polls(now)
    for call_id in sends:
        send_call.delay(call_id)
    for call_id in polls:
        poll_call.delay(call_id)
    if sends or polls or expired or moved:
        log.info(
            "sweep: %d to send, %d to poll, %d sending leases expired, %d rescheduled",
            len(sends),
            len(polls),
            expired,
            moved,
        )


@shared_task(ignore_result=True, soft_time_limit=_REQUEST_LIMIT, time_limit=_REQUEST_LIMIT + 10)
def send_call(call_id: int) -> None:
    dispatch.send_call(call_id)


@shared_task(ignore_result=True, soft_time_limit=_REQUEST_LIMIT, time_limit=_REQUEST_LIMIT + 10)
def poll_call(call_id: int) -> None:
    polling.poll_call(call_id)


@shared_task(ignore_result=True, soft_time_limit=30, time_limit=40)
def refresh_balances() -> None:
    """Run by beat every minute: one balance refresh per store, each its own task, so one
    stalled account delays only its own."""
    for store_id in Store.objects.values_list("pk", flat=True):
        refresh_store_balance.delay(store_id)


@shared_task(ignore_result=True, soft_time_limit=_REQUEST_LIMIT, time_limit=_REQUEST_LIMIT + 10)
def refresh_store_balance(store_id: int) -> None:
    balances.refresh_store_balance(store_id)


@shared_task(ignore_result=True, soft_time_limit=900, time_limit=960)
def launch_upload(upload_id: int) -> None:
    """A large upload's launch (the view claimed it first). 100,000 rows take about 20 s; a
    launch cut off (limit, lost worker) is enqueued again by look_after_uploads and resumes
    where it stopped."""
    uploads.launch_upload(upload_id)


# A workbook at the caps of calls/intake/workbooks.py takes openpyxl about a minute on a quiet
# machine.
@shared_task(ignore_result=True, soft_time_limit=300, time_limit=330)
def read_upload(upload_id: int) -> None:
    """Read a workbook uploaded on the new-campaign page into its preview (the view stored the
    file). A reading cut off is handed to a worker again by look_after_uploads."""
    uploads.read_upload(upload_id)


@shared_task(ignore_result=True, soft_time_limit=50, time_limit=60)
def look_after_uploads() -> None:
    """Run by beat every minute: hand stalled launches, readings and courier sheets to a worker
    again and delete uploads nobody launched within a day, with any file still waiting (the
    next upload would, but there may be none)."""
    for upload_id in uploads.resume_stalled_launches():
        log.warning("upload %d: its launch stalled; handed to a worker again", upload_id)
        launch_upload.delay(upload_id)
    for upload_id in uploads.resume_stalled_readings():
        log.warning("upload %d: its reading stalled; handed to a worker again", upload_id)
        read_upload.delay(upload_id)
    uploads.sweep_abandoned_uploads()
    for sheet_id in delivery_sheets.resume_stalled_sheets():
        log.warning("delivery sheet %d stalled; handed to a worker again", sheet_id)
        apply_delivery_sheet.delay(sheet_id)


# A sheet at the upload's cap (200,000 rows) takes about half a minute on a quiet machine.
@shared_task(ignore_result=True, soft_time_limit=600, time_limit=660)
def apply_delivery_sheet(sheet_id: int) -> None:
    """Apply a courier's sheet uploaded on a store's page to its orders (the view stored the
    file). Cut off, it is handed on again by look_after_uploads and resumes after its last
    batch."""
    delivery_sheets.apply_sheet(sheet_id)


@shared_task(ignore_result=True, soft_time_limit=900, time_limit=960)
def run_order_batch(batch_id: int) -> None:
    """A bulk action over more orders than a request waits for (calls/order_batches.py). Cut
    off, it is handed on again by look_after_order_batches and resumes after its last chunk."""
    order_batches.run_batch(batch_id)


@shared_task(ignore_result=True, soft_time_limit=50, time_limit=60)
def look_after_order_batches() -> None:
    """Run by beat every minute: hand bulk actions that stopped moving to a worker again."""
    for batch_id in order_batches.resume_stalled_batches():
        log.warning("order batch %d stalled; handed to a worker again", batch_id)
        run_order_batch.delay(batch_id)
