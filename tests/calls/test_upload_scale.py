"""Uploads at scale, through the processes production runs: a real gunicorn worker whose memory
is read from /proc while it takes a 10 MB file, a real Celery worker that reads a workbook while
the launch page polls its progress, and one that launches a large upload while the campaign page
polls its progress."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from calls.models import Call, Campaign, Upload, UploadFile, UploadRow, User
from tests.conftest import TEST_API_KEY
from tests.support.pipeline import Pipeline, child_database_url, wait_for
from tests.support.webserver import DEFAULT_HASHER, WebServer, gunicorn, status_kib
from tests.support.workbooks import sheet_xlsx

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "a-long-passphrase-for-uploads"
HEADER = b"phone,amount,order_id,store_name\n"


@pytest.fixture
def web(simulator, settings) -> Iterator[WebServer]:
    env = {
        "DATABASE_URL": child_database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "FIELD_ENCRYPTION_KEY": settings.FIELD_ENCRYPTION_KEY,
        "ROBOCALL_BASE_URL": simulator.base_url,
    }
    with gunicorn(env) as server:
        yield server


@pytest.fixture
def amina(settings) -> User:
    settings.PASSWORD_HASHERS = [DEFAULT_HASHER]
    return User.objects.create_user("amina", password=PASSWORD, role=User.Role.ADMIN)


def post_upload(web: WebServer, amina: User, store, content: bytes, name: str):
    browser = web.signed_in(amina.username, PASSWORD)
    answer, seconds, growth_mib = web.upload(browser, store.pk, name, content)
    print(f"\n{name}: {len(content) / 1e6:.1f} MB in {seconds:.1f} s, worker +{growth_mib:.0f} MiB")
    return answer, seconds, growth_mib


def test_the_10_mb_file_of_5_2_million_rows_is_refused_by_the_cap_in_bounded_memory(
    web, amina, store
):
    content = HEADER + b"1\n" * 5_200_000  # 10.4 MB, under the 10 MiB upload limit

    answer, seconds, growth_mib = post_upload(web, amina, store, content, "Huge")

    assert answer.status_code == 200, answer.text[:500]
    assert "more than 200,000 rows, the most one upload may have" in answer.text
    assert growth_mib < 100
    assert seconds < 20
    assert not Campaign.objects.exists()
    assert not Upload.objects.exists()
    assert not UploadRow.objects.exists()


def test_100000_valid_rows_are_read_in_bounded_memory_and_previewed_from_the_database(
    web, amina, store
):
    rows = b"".join(b"0300%07d,1500,ORD-%06d,Shop\n" % (i, i) for i in range(100_000))

    answer, seconds, growth_mib = post_upload(web, amina, store, HEADER + rows, "Big")

    assert answer.status_code == 302, answer.text[:500]
    assert growth_mib < 100
    staged = Upload.objects.get()
    assert (staged.total_rows, staged.valid_rows) == (100_000, 100_000)
    assert UploadRow.objects.filter(upload=staged).count() == 100_000


def test_an_excel_file_of_40000_rows_named_csv_is_read_by_a_worker_in_bounded_memory(
    web, amina, store, simulator
):
    header: tuple[str | int, ...] = ("phone", "amount", "order_id", "store_name")
    # Phones and order ids as Excel keeps typed numbers (3001234567, not 0300 1234567).
    rows = [(3_000_000_000 + i, "Rs 1,500", 700_000 + i, "Shop") for i in range(40_000)]
    content = sheet_xlsx([header, *rows])
    # The worker runs tasks in its own process (solo pool): its memory is the reading's.
    pipeline = Pipeline(base_url=simulator.base_url, pool="solo", concurrency=1)
    worker = pipeline.start_worker()
    try:
        wait_for(
            lambda: " ready." in pipeline.logs(),
            timeout=60,
            what="the worker to be ready",
            describe=lambda: pipeline.logs()[-3000:],
        )
        worker_before = status_kib(worker.pid, "VmRSS")

        # The request stores the file and answers at once: the web worker reads no workbook.
        answer, seconds, growth_mib = post_upload(web, amina, store, content, "Excel")
        assert answer.status_code == 302, answer.text[:500]
        assert seconds < 5
        assert growth_mib < 30

        browser = web.signed_in(amina.username, PASSWORD)
        launch_page = f"{web.url}{answer.headers['Location']}"
        seen: list[str] = []

        def reading_ended() -> bool:
            poll = browser.get(launch_page, headers={"HX-Request": "true"}, timeout=10)
            seen.append(poll.text)
            return poll.headers.get("HX-Refresh") == "true"

        wait_for(
            reading_ended,
            timeout=120,
            interval=0.2,
            what="the worker to read the workbook and the page to reload",
            describe=lambda: pipeline.logs()[-3000:],
        )
        worker_growth_mib = (status_kib(worker.pid, "VmHWM") - worker_before) / 1024
    finally:
        pipeline.stop()
    print(f"\nworker reading 40,000 rows: +{worker_growth_mib:.0f} MiB")
    # While it read, the page polled a progress bar of the sheet's rows.
    assert any('id="reading"' in text and "hx-get" in text for text in seen), seen[:2]
    assert any("of 40,001 rows read" in text for text in seen), seen[-2:]
    # Loaded whole, openpyxl would hold a Cell object per cell: some 45 MiB more here.
    assert worker_growth_mib < 30
    staged = Upload.objects.get()
    assert (staged.status, staged.total_rows, staged.valid_rows) == ("previewed", 40_000, 40_000)
    assert not UploadFile.objects.exists()  # deleted once staged
    preview = browser.get(launch_page, timeout=30).text
    assert "Preview of orders.csv" in preview
    assert "Valid rows (40,000)" in preview


def test_a_large_launch_returns_at_once_and_a_worker_completes_it_while_the_page_polls(
    admin_client, store, simulator, provider_url, settings
):
    settings.ROBODASH_LAUNCH_IN_REQUEST_ROWS = 1000
    simulator.add_account(
        api_key=TEST_API_KEY, username="teststore", balance="100000.00", call_rate="5.50"
    )
    rows = "".join(f"0300{i:07d},1500,L-{i:05d},Shop\n" for i in range(5000))
    admin_client.post(
        reverse("campaign_upload"),
        {
            "store": store.pk,
            "campaign_name": "Large",
            "voice_id": "",
            "file": SimpleUploadedFile("orders.csv", (HEADER.decode() + rows).encode()),
        },
    )
    campaign = Campaign.objects.get(name="Large")
    # Paused: the calls wait once queued, so the page stops polling when the launch is done.
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.PAUSED)
    progress = reverse("campaign_progress", args=[campaign.pk])

    started = time.monotonic()
    launched = admin_client.post(reverse("campaign_launch", args=[campaign.pk]))
    assert time.monotonic() - started < 5
    assert launched.status_code == 302
    waiting = admin_client.get(progress, HTTP_HX_REQUEST="true")
    assert waiting.status_code == 200  # still polling: the task waits for a worker
    assert "0 of 5,000 rows queued (0%)" in waiting.content.decode()
    assert not Call.objects.exists()

    pipeline = Pipeline(base_url=provider_url)
    pipeline.start_worker()
    try:
        done = wait_for(
            lambda: (
                (r := admin_client.get(progress, HTTP_HX_REQUEST="true")).status_code == 286 and r
            ),
            timeout=120,
            interval=0.5,
            what="the launch to finish and the page to stop polling",
            describe=lambda: pipeline.logs()[-3000:],
        )
    finally:
        pipeline.stop()
    assert "5,000 of 5,000" not in done.content.decode()  # the launching bar is gone
    assert "0 of 5,000 calls final" in done.content.decode()
    assert campaign.calls.filter(state=Call.State.QUEUED).count() == 5000
    staged = Upload.objects.get()
    assert (staged.status, staged.imported_rows) == (Upload.Status.LAUNCHED, 5000)
    assert not UploadRow.objects.exists()
    # A second press of the same page's Launch button is refused.
    again = admin_client.post(
        reverse("campaign_launch", args=[campaign.pk]), {"upload": staged.pk}, follow=True
    )
    assert "already launched or replaced" in again.content.decode()
    assert campaign.calls.count() == 5000
