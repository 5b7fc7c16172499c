"""Workbooks that expand: refused by what they declare and hold, quickly and in bounded memory,
before openpyxl builds them; and the worker's reading of an upload from its stored file to its
preview, failure, hand-over to another worker and clean-up.

tests/calls/test_upload_scale.py has a real Celery worker read a workbook behind gunicorn."""

from __future__ import annotations

import datetime as dt
import io
import os
import time
import tracemalloc

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone, translation

from calls.intake import uploads, workbooks
from calls.intake.file_errors import ImportFileError, describe
from calls.intake.files import validated_rows
from calls.models import Campaign, Upload, UploadFile, UploadRow
from tests.support.pages import text_of
from tests.support.workbooks import HEADER_ROW, package, repeated, sheet_xlsx

MIB = 1024 * 1024
ORDERS = sheet_xlsx(
    [
        ("phone", "amount", "order_id", "store_name"),
        *((3_001_234_500 + i, 1500, f"W-{i}", "Karachi Kitchenware") for i in range(12)),
    ]
)


def refusal(content: bytes) -> tuple[ImportFileError, float, float]:
    """Read `content` as an upload is read: the refusal, the CPU seconds it took (this
    process's: a busy machine's other work does not count) and the MiB the reading allocated at
    its peak (tracemalloc: Python's and openpyxl's objects)."""
    tracemalloc.start()
    started = time.process_time()
    try:
        with pytest.raises(ImportFileError) as refused:
            for _ in validated_rows(io.BytesIO(content)):
                pass
        seconds = time.process_time() - started
        peak = tracemalloc.get_traced_memory()[1] / MIB
    finally:
        tracemalloc.stop()
    return refused.value, seconds, peak


def post_file(client, store, content: bytes, filename: str = "orders.xlsx"):
    return client.post(
        reverse("campaign_upload"),
        {
            "store": store.pk,
            "campaign_name": "Workbook",
            "voice_id": "",
            "file": SimpleUploadedFile(filename, content),
        },
    )


# --- Refused by what the zip declares, before openpyxl opens it --------------------------------


def test_a_zip_bomb_is_refused_in_the_request_at_once_and_nothing_is_stored(
    admin, store, provider_url
):
    # 60 MB of one repeated row squeezed into some 250 KB, as zip bombs do.
    content = package(repeated(b"<row/>", 10_000_000))
    assert len(content) < 300_000

    started = time.monotonic()
    response = post_file(admin, store, content)
    seconds = time.monotonic() - started

    page = text_of(response)
    assert response.status_code == 200
    assert "xl/worksheets/sheet1.xml expands" in page
    assert "refused as a zip bomb" in page
    assert seconds < 2
    assert not Campaign.objects.exists()
    assert not Upload.objects.exists()


def test_a_workbook_expanding_past_the_total_cap_is_refused_by_its_declared_size(monkeypatch):
    # Parts that compress no more than a real sheet (far under MAX_RATIO) but together declare
    # more than the cap (made 2 MiB here: 256 MiB of noise takes seconds to deflate).
    monkeypatch.setattr(workbooks, "MAX_EXPANDED_BYTES", 2 * MIB)
    parts = {f"xl/worksheets/sheet{n}.xml": [os.urandom(MIB)] for n in range(2, 5)}
    content = package([HEADER_ROW], extra_parts=parts)

    error, seconds, peak_mib = refusal(content)

    assert error.code == "workbook_expands"
    assert "expands to more than 2 MB when unzipped: save it as CSV or split it" in str(error)
    assert seconds < 1
    assert peak_mib < 5


def test_a_part_openpyxl_parses_whole_is_refused_past_its_cap():
    # Styles are parsed into a tree at once: 17 MB of them would be hundreds of MB of objects.
    content = package([HEADER_ROW], extra_parts={"xl/styles.xml": [os.urandom(17 * MIB)]})

    error, _seconds, _peak = refusal(content)

    assert error.code == "workbook_part"
    assert "the workbook's part xl/styles.xml expands to 17 MB, more than the 16 MB" in str(error)


# --- Refused by what the sheet declares and holds, before openpyxl builds a row -----------------


def test_a_sheet_declaring_a_million_rows_is_refused_before_a_row_is_read():
    content = package([HEADER_ROW], dimension="A1:XFD1048576")

    error, seconds, _peak = refusal(content)

    assert str(error) == (
        "the sheet has more than 250,000 rows (blank rows count): save it as CSV or split it; "
        "nothing was imported"
    )
    assert seconds < 1


def test_a_sheet_of_empty_rows_is_refused_quickly_in_bounded_memory():
    # Like the 177 KB workbook that ran 87 s: row after empty row, numbered so that the zip's
    # ratio passes. Blank rows count.
    content = package([HEADER_ROW, *(b'<row r="%d"/>' % n for n in range(2, 300_000))])
    assert len(content) < 1_000_000

    error, seconds, peak_mib = refusal(content)

    assert error.code == "sheet_rows"
    assert seconds < 5
    assert peak_mib < 10


def test_a_row_numbered_a_million_is_refused_without_yielding_the_rows_before_it():
    # openpyxl would yield 999,998 empty rows to reach it.
    content = package([HEADER_ROW, b'<row r="1000000"><c><v>1</v></c></row>'])

    error, seconds, _peak = refusal(content)

    assert error.code == "sheet_rows"
    assert seconds < 1


def test_a_row_of_a_million_cells_is_refused_before_openpyxl_builds_it():
    # openpyxl holds a whole row before handing it over: a million cells would be some
    # 500 MB of dictionaries. Cells without a reference take the next column.
    cells = (b"<c><v>%d</v></c>" % n for n in range(1_000_000))  # varied: the ratio passes
    content = package([HEADER_ROW, b"<row>", *cells, b"</row>"])

    error, seconds, peak_mib = refusal(content)

    assert error.code == "sheet_columns"
    assert "row 2 of the sheet goes beyond column XFD" in str(error)
    assert seconds < 2
    assert peak_mib < 10


def test_a_hostile_second_sheet_is_refused_too_as_openpyxl_would_look_into_it():
    # openpyxl's read-only load reads every sheet to its end in search of a dimension.
    cells = (b"<c><v>%d</v></c>" % n for n in range(100_000))
    second = [b'<worksheet><sheetData><row r="1">', *cells, b"</row></sheetData></worksheet>"]
    content = package([HEADER_ROW], extra_parts={"xl/worksheets/sheet2.xml": second})

    error, seconds, _peak = refusal(content)

    assert error.code == "sheet_columns"
    assert seconds < 1


def test_a_sheet_expanding_to_more_cells_than_the_cap_is_refused_as_it_is_counted():
    # Each row's last cell is at column 16,000: openpyxl would build every cell up to it.
    wide = b'<row><c r="WOF%d"><v>1</v></c></row>'
    content = package([HEADER_ROW, *(wide % n for n in range(2, 300))])

    error, seconds, peak_mib = refusal(content)

    assert str(error).startswith("the sheet expands to more than 3,000,000 cells")
    assert "save it as CSV or split it" in str(error)
    assert seconds < 1
    assert peak_mib < 10


def test_a_cell_longer_than_a_spreadsheet_cell_is_refused():
    long_cell = b'<row><c t="inlineStr"><is><t>' + b"x" * 40_000 + b"</t></is></c></row>"
    content = package([HEADER_ROW, long_cell])

    error, _seconds, _peak = refusal(content)

    assert error.code == "cell_too_long"


def test_a_workbook_within_the_caps_reads_as_before():
    results = list(validated_rows(io.BytesIO(ORDERS)))

    assert len(results) == 12
    assert {type(r).__name__ for r in results} == {"OrderRow"}
    assert workbooks.MAX_RATIO < 1000 < workbooks.MAX_ROWS  # the caps leave real sheets alone


# --- The worker's reading of an upload ---------------------------------------------------------


@pytest.fixture
def received(admin, store, provider_url) -> Upload:
    response = post_file(admin, store, ORDERS)
    assert response.status_code == 302, text_of(response)
    return Upload.objects.get()


def test_a_workbook_waits_in_the_database_and_the_page_polls_until_a_worker_has_read_it(
    admin, received
):
    launch = reverse("campaign_launch", args=[received.campaign_id])
    assert received.status == Upload.Status.READING
    assert UploadFile.objects.get(upload=received).content == ORDERS

    waiting = text_of(admin.get(launch))
    polled = admin.get(launch, HTTP_HX_REQUEST="true")
    uploads.read_upload(received.pk)  # what the worker runs
    ended = admin.get(launch, HTTP_HX_REQUEST="true")
    preview = text_of(admin.get(launch))

    assert "Reading orders.xlsx" in waiting
    assert "Waiting for a worker to open the workbook." in waiting
    assert "Launch" not in text_of(polled) and 'hx-trigger="every 1s"' in text_of(polled)
    assert ended["HX-Refresh"] == "true"  # htmx reloads the page: the preview
    assert "Preview of orders.xlsx" in preview
    assert "Launch 12 calls" in preview
    staged = Upload.objects.get()
    assert (staged.status, staged.valid_rows, staged.sheet_rows) == ("previewed", 12, 13)
    assert not UploadFile.objects.exists()


def test_the_reading_page_shows_how_far_the_worker_has_read(admin, received):
    Upload.objects.filter(pk=received.pk).update(sheet_rows=40_001, read_through_row=10_000)

    polled = text_of(
        admin.get(reverse("campaign_launch", args=[received.campaign_id]), HTTP_HX_REQUEST="true")
    )

    assert '<progress class="cp-bar big" max="40001" value="10000">' in polled
    assert "10,000 of 40,001 rows read (24%)" in polled


def test_a_workbook_that_cannot_be_imported_fails_with_its_reason_and_keeps_nothing(
    admin, store, provider_url
):
    wrong = sheet_xlsx([("telephone", "total"), (3001234567, 1500)])
    post_file(admin, store, wrong)
    upload = Upload.objects.get()

    uploads.read_upload(upload.pk)
    page = text_of(admin.get(reverse("campaign_launch", args=[upload.campaign_id])))

    failed = Upload.objects.get()
    assert (failed.status, failed.error_code) == ("failed", "columns_missing")
    assert "orders.xlsx could not be read" in page
    assert "The header is missing the columns phone, amount, order_id, store_name." in page
    assert not UploadFile.objects.exists()
    assert not UploadRow.objects.exists()
    # Stored as a code: said in the language of whoever reads the page.
    english = describe(failed.error_code, failed.error_params)
    with translation.override("ur"):
        assert describe(failed.error_code, failed.error_params) != english
    discarded = admin.post(
        reverse("campaign_launch", args=[upload.campaign_id]), {"action": "discard"}
    )
    assert discarded.status_code == 302
    assert not Upload.objects.exists() and not Campaign.objects.exists()


def test_launch_is_refused_while_the_workbook_is_being_read(admin, received):
    launch = reverse("campaign_launch", args=[received.campaign_id])

    response = admin.post(launch, follow=True)

    assert "The upload orders.xlsx has not been read: nothing was launched." in text_of(response)
    assert not received.campaign.calls.exists()


def stalled(upload: Upload) -> dt.datetime:
    """A moment at which `upload`'s reading has not moved for longer than STALLED_AFTER."""
    upload.refresh_from_db()
    assert upload.read_moved_at is not None
    return upload.read_moved_at + uploads.STALLED_AFTER + dt.timedelta(seconds=1)


def test_a_stalled_reading_is_handed_to_a_worker_once_and_the_lost_attempt_writes_nothing(
    received,
):
    assert uploads.resume_stalled_readings() == []  # it just arrived
    first = uploads._start_reading(received.pk)  # a worker starts, then is lost
    assert first is not None
    later = stalled(received)

    handed = uploads.resume_stalled_readings(later), uploads.resume_stalled_readings(later)
    uploads.read_upload(received.pk)  # the worker it was handed to

    assert handed == ([received.pk], [])
    assert uploads._still_mine(received.pk, first[0]) is None  # the lost one may not write
    staged = Upload.objects.get()
    assert (staged.status, staged.read_attempts, staged.valid_rows) == ("previewed", 2, 12)
    assert UploadRow.objects.count() == 12


def test_a_workbook_that_keeps_losing_its_workers_is_failed_not_handed_on_forever(received):
    for _ in range(uploads.READ_ATTEMPTS):
        assert uploads._start_reading(received.pk) is not None

    assert uploads.resume_stalled_readings(stalled(received)) == []

    failed = Upload.objects.get()
    assert (failed.status, failed.error_code) == ("failed", "read_lost")
    assert not UploadFile.objects.exists()


def test_a_new_upload_replaces_a_workbook_being_read_and_its_reader_stops(admin, store, received):
    started = uploads._start_reading(received.pk)
    assert started is not None
    post_file(admin, store, ORDERS, "second.xlsx")

    uploads.read_upload(received.pk)  # finds its upload gone

    assert list(Upload.objects.values_list("filename", "status")) == [("second.xlsx", "reading")]
    assert UploadFile.objects.count() == 1


def test_readings_and_files_nobody_came_back_for_are_deleted_after_a_day(received):
    a_day_later = timezone.now() + uploads.ABANDONED_AFTER + dt.timedelta(minutes=1)

    assert uploads.sweep_abandoned_uploads(a_day_later) >= 1

    assert not Upload.objects.exists()
    assert not UploadFile.objects.exists()


def test_the_stored_file_is_capped_by_the_database_itself(received):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        UploadFile.objects.filter(upload=received).update(content=b"x" * (10 * MIB + 1))
