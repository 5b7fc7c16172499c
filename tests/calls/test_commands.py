"""The scripted interfaces: import_calls, export_calls, export_orders, add_store, add_user.

Run through call_command, and through a real `python manage.py` subprocess where the exit status
or the process environment is the point. The provider is the simulator over real HTTP.
"""

import csv
import datetime as dt
import io
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from calls.exports import (
    CALL_EXPORT_COLUMNS,
    ORDER_EXPORT_COLUMNS,
    iter_calls_csv,
    write_calls_csv,
)
from calls.intake.single import create_single_call
from calls.models import Call, CallEvent, Campaign, Order, Store, User
from calls.transitions import decide_by_hand
from tests.calls.test_balances import closed_port_url
from tests.conftest import TEST_API_KEY
from tests.support.orders import create_call
from tests.support.pipeline import child_database_url

PROJECT_DIR = Path(__file__).resolve().parents[2]
HEADER = "phone,amount,order_id,store_name"
ORDERS = (
    HEADER,
    "0300-1234567,1500,ORD-1,Karachi Kitchenware",
    "+92 345 6789012,990,ORD-2,Karachi Kitchenware",
    "03331112223,2500,ORD-3,Karachi Kitchenware",
    "021-3456789,700,ORD-4,Karachi Kitchenware",
)


def write_csv(tmp_path: Path, *lines: str, name: str = "orders.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_command(name: str, *args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(name, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def failing_command(name: str, *args: str) -> tuple[CommandError, str]:
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as failed:
        call_command(name, *args, stdout=out, stderr=err)
    return failed.value, out.getvalue() + err.getvalue()


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python manage.py ...` on the test database (committed data only: transactional tests)."""
    environment = {**os.environ, "DATABASE_URL": child_database_url(), **env}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def import_into_may(path: Path, store: Store, simulator) -> subprocess.CompletedProcess[str]:
    """The real `manage.py import_calls PATH --campaign May --store STORE` on the simulator."""
    return manage(
        "import_calls",
        str(path),
        "--campaign",
        "May",
        "--store",
        store.name,
        ROBOCALL_BASE_URL=simulator.base_url,
    )


def set_balance(simulator, balance: str) -> None:
    simulator.add_account(
        api_key=TEST_API_KEY, username="teststore", balance=balance, call_rate="5.50"
    )


# --- import_calls ---------------------------------------------------------------------------------


def test_import_prints_each_rejected_row_and_a_summary_then_launches(store, provider_url, tmp_path):
    out, _ = run_command(
        "import_calls",
        str(write_csv(tmp_path, *ORDERS)),
        "--campaign",
        "May",
        "--store",
        store.name,
    )

    assert "row 5: phone '021-3456789' is a landline, not a mobile number" in out
    assert "4 rows read, 3 imported, 0 already known, 0 duplicates in this file, 1 rejected" in out
    assert "is running: 3 calls queued" in out
    campaign = Campaign.objects.get(store=store, name="May")
    assert campaign.status == Campaign.Status.RUNNING
    assert campaign.calls.filter(state=Call.State.QUEUED).count() == 3


def test_import_with_a_voice_id_gives_it_to_the_campaign_and_its_calls(
    store, provider_url, tmp_path
):
    run_command(
        "import_calls",
        str(write_csv(tmp_path, *ORDERS)),
        *("--campaign", "May", "--store", store.name, "--voice-id", "48"),
    )
    campaign = Campaign.objects.get(name="May")
    assert campaign.voice_id == 48
    assert set(campaign.calls.values_list("voice_id", flat=True)) == {48}


def test_importing_the_same_file_again_changes_nothing_and_succeeds(store, provider_url, tmp_path):
    path = write_csv(tmp_path, *ORDERS[:3])
    run_command("import_calls", str(path), "--campaign", "May", "--store", store.name)

    out, _ = run_command("import_calls", str(path), "--campaign", "May", "--store", store.name)

    assert "0 imported, 2 already known, 0 duplicates in this file" in out
    assert "row 2: order 'ORD-1' already known (waiting, since " in out
    assert "2 already known: no new order, no call placed; nothing changed." in out
    assert Call.objects.count() == 2
    assert Campaign.objects.get(name="May").status == Campaign.Status.RUNNING


def test_a_file_with_nothing_valid_exits_1_and_creates_no_campaign(store, provider_url, tmp_path):
    path = write_csv(tmp_path, HEADER, "021-3456789,100,A,S", "03001234567,abc,B,S")

    error, output = failing_command(
        "import_calls", str(path), "--campaign", "May", "--store", store.name
    )

    assert error.returncode == 1
    assert "nothing valid to import" in str(error)
    assert "row 2: phone '021-3456789' is a landline" in output
    assert "row 3: amount 'abc' is not a number" in output
    assert not Campaign.objects.filter(name="May").exists()


def test_a_missing_column_exits_1_with_one_clear_error_and_keeps_what_was_there(
    store, provider_url, tmp_path
):
    run_command(
        "import_calls",
        str(write_csv(tmp_path, *ORDERS)),
        "--campaign",
        "May",
        "--store",
        store.name,
    )
    bad = write_csv(tmp_path, "phone,amount,store_name", "03001234567,100,S", name="bad.csv")

    error, _ = failing_command("import_calls", str(bad), "--campaign", "May", "--store", store.name)

    assert error.returncode == 1
    assert "missing the column order_id" in str(error)
    assert Call.objects.count() == 3
    assert Campaign.objects.get(name="May").status == Campaign.Status.RUNNING


def test_a_missing_file_or_store_or_a_bad_voice_id_exits_1_with_a_clear_error(store, tmp_path):
    path = str(write_csv(tmp_path, *ORDERS))
    missing = str(tmp_path / "missing.csv")
    for args, message in [
        ((missing, "--store", store.name), f"{missing}: no such file"),
        ((path, "--store", "Nowhere Store"), "no store named 'Nowhere Store' (stores: Karachi"),
        ((path, "--store", store.name, "--voice-id", "x"), "--voice-id must be a positive whole"),
    ]:
        error, _ = failing_command("import_calls", *args, "--campaign", "May")

        assert message in str(error)
        assert error.returncode == 1
    assert not Campaign.objects.exists()


def test_a_low_balance_leaves_the_calls_imported_and_the_campaign_in_draft_with_exit_2(
    store, simulator, provider_url, tmp_path
):
    set_balance(simulator, "300.00")

    error, output = failing_command(
        "import_calls",
        str(write_csv(tmp_path, *ORDERS)),
        "--campaign",
        "May",
        "--store",
        store.name,
    )

    assert error.returncode == 2
    assert "balance Rs 300.00" in str(error)
    assert "threshold of Rs 500.00" in str(error)
    assert "left in draft" in str(error)
    assert "3 imported" in output
    campaign = Campaign.objects.get(name="May")
    assert campaign.status == Campaign.Status.DRAFT
    assert campaign.calls.count() == 3


def test_more_orders_than_the_balance_covers_hold_a_running_campaign_in_draft(
    store, simulator, provider_url, tmp_path
):
    run_command(
        "import_calls",
        str(write_csv(tmp_path, *ORDERS)),
        "--campaign",
        "May",
        "--store",
        store.name,
    )
    set_balance(simulator, "600.00")  # above the threshold, below 60 calls x 5.50 x 2
    many = write_csv(
        tmp_path, HEADER, *(f"03001234567,100,N-{i},S" for i in range(57)), name="more.csv"
    )

    error, _ = failing_command(
        "import_calls", str(many), "--campaign", "May", "--store", store.name
    )

    assert error.returncode == 2
    assert "estimated cost Rs 660.00 of 60 calls" in str(error)
    assert Campaign.objects.get(name="May").status == Campaign.Status.DRAFT
    assert Call.objects.count() == 60


def test_a_paused_campaign_stays_paused_after_an_import(store, provider_url, tmp_path):
    Campaign.objects.create(store=store, name="May", status=Campaign.Status.PAUSED)

    out, _ = run_command(
        "import_calls",
        str(write_csv(tmp_path, *ORDERS)),
        "--campaign",
        "May",
        "--store",
        store.name,
    )

    assert "is paused" in out
    assert Campaign.objects.get(name="May").status == Campaign.Status.PAUSED


def test_an_unreachable_provider_launches_with_a_warning(store, settings, tmp_path):
    settings.ROBOCALL_BASE_URL = closed_port_url()

    out, _ = run_command(
        "import_calls",
        str(write_csv(tmp_path, *ORDERS)),
        "--campaign",
        "May",
        "--store",
        store.name,
    )

    assert "Warning: the provider could not be asked" in out
    assert Campaign.objects.get(name="May").status == Campaign.Status.RUNNING


def test_progress_is_reported_on_stderr_every_ten_thousand_rows(store, provider_url, tmp_path):
    path = write_csv(tmp_path, HEADER, *(f"03001234567,100,P-{i},S" for i in range(10_001)))
    # The simulator's 5000.00 does not cover 10,001 calls: imported, held in draft (exit 2).
    error, output = failing_command(
        "import_calls", str(path), "--campaign", "Big", "--store", store.name
    )
    assert error.returncode == 2
    assert "10,000 rows read" in output
    assert "20,000 rows read" not in output
    assert Call.objects.count() == 10_001


@pytest.mark.django_db(transaction=True)
def test_the_real_command_exits_2_on_a_low_balance_and_0_once_topped_up(store, simulator, tmp_path):
    path = write_csv(tmp_path, *ORDERS)
    args = ("import_calls", str(path), "--campaign", "May", "--store", store.name)
    set_balance(simulator, "100.00")

    low = manage(*args, ROBOCALL_BASE_URL=simulator.base_url)

    assert low.returncode == 2, low.stderr
    assert "row 5: phone '021-3456789' is a landline, not a mobile number" in low.stdout
    assert "balance Rs 100.00" in low.stderr and "left in draft" in low.stderr
    assert Campaign.objects.get(name="May").status == Campaign.Status.DRAFT

    set_balance(simulator, "5000.00")
    extra = write_csv(tmp_path, HEADER, "03001234567,100,ORD-9,S", name="extra.csv")
    topped_up = manage(
        "import_calls",
        str(extra),
        "--campaign",
        "May",
        "--store",
        store.name,
        ROBOCALL_BASE_URL=simulator.base_url,
    )

    assert topped_up.returncode == 0, topped_up.stderr
    assert Campaign.objects.get(name="May").status == Campaign.Status.RUNNING
    assert Call.objects.count() == 4


@pytest.mark.django_db(transaction=True)
def test_the_real_command_exits_1_when_nothing_valid_was_imported(store, simulator, tmp_path):
    path = write_csv(tmp_path, HEADER, "021-3456789,100,A,S")

    result = import_into_may(path, store, simulator)

    assert result.returncode == 1
    assert "nothing valid to import" in result.stderr


@pytest.mark.django_db(transaction=True)
def test_the_real_command_reports_a_nul_cell_as_a_row_reason_and_imports_the_rest(
    store, simulator, tmp_path
):
    path = tmp_path / "orders.csv"
    path.write_bytes(f"{HEADER}\n03001234567,100,NUL\x00-1,S\n03001234568,100,GOOD-1,S\n".encode())
    set_balance(simulator, "5000.00")

    result = import_into_may(path, store, simulator)

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "row 2: order_id contains a control character (U+0000, NUL) at position 4" in (
        result.stdout
    )
    assert "2 rows read, 1 imported, 0 already known, 0 duplicates in this file, 1 rejected" in (
        result.stdout
    )
    assert list(Call.objects.values_list("order_id", flat=True)) == ["GOOD-1"]


def test_import_calls_stores_and_reports_exactly_what_the_upload_page_does_with_the_file(
    store, admin, provider_url, tmp_path
):
    lines = (
        HEADER,
        "0300-1234567,1500,ORD-1,Karachi Kitchenware",  # row 2: new
        "03451112223,990,KNOWN-1,Karachi Kitchenware",  # row 3: the store has it
        "021-3456789,700,ORD-2,Karachi Kitchenware",  # row 4: a landline
        "03001234568,900,ORD-1,Karachi Kitchenware",  # row 5: repeats row 2
        "03331112223,2500,ORD-3,Karachi Kitchenware",  # row 6: new
    )
    by_page = Store(name="Lahore Linens", calling_start=store.calling_start)
    by_page.calling_end, by_page.api_key = store.calling_end, TEST_API_KEY
    by_page.save()
    for each in (store, by_page):
        known = Campaign.objects.create(store=each, name="April")
        create_single_call(
            known, phone="03451112223", amount=990, order_id="KNOWN-1", store_name="S"
        )

    out, _ = run_command(
        "import_calls", str(write_csv(tmp_path, *lines)), "--campaign", "May", "--store", store.name
    )
    admin.post(
        reverse("campaign_upload"),
        {
            "store": by_page.pk,
            "campaign_name": "May",
            "file": SimpleUploadedFile("orders.csv", "\n".join(lines).encode()),
        },
    )
    on_page = Campaign.objects.get(store=by_page, name="May")
    preview = admin.get(reverse("campaign_launch", args=[on_page.pk])).context
    admin.post(reverse("campaign_launch", args=[on_page.pk]))

    staged = preview["upload"]
    page_lines = [
        *(f"row {r.row}: {r.reason}" for r in preview["rejected"]),
        *(str(known) for known in preview["known"]),
        *(f"row {r.row}: order {r.order_id!r} {r.reason}, skipped" for r in preview["duplicates"]),
        f"Campaign 'May' (created): {staged.total_rows} rows read, {staged.valid_rows} imported, "
        f"{staged.known_rows} already known, {staged.duplicate_rows} duplicates in this file, "
        f"{staged.rejected_rows} rejected.",
    ]
    assert out.splitlines()[: len(page_lines)] == page_lines
    assert page_lines[1] == (
        f"row 3: order 'KNOWN-1' already known (waiting, since "
        f"{timezone.localdate(timezone=store.zone):%Y-%m-%d}), not called again"
    )
    assert page_lines[-1].endswith(
        "5 rows read, 2 imported, 1 already known, 1 duplicates in this file, 1 rejected."
    )

    differ = {"id", "store_id", "campaign_id", "shop_order_id", "created_at", "updated_at"}
    differ |= {"scheduled_for", "arrived_at"}  # now, in each store (both call round the clock)

    def same_everywhere(rows: list[dict]) -> list[dict]:
        return [{k: v for k, v in row.items() if k not in differ} for row in rows]

    def stored(campaign: Campaign):
        orders = [
            {f.attname: getattr(o, f.attname) for f in Order._meta.concrete_fields}
            for o in campaign.orders.order_by("order_id")
        ]
        calls = [
            {f.attname: getattr(c, f.attname) for f in Call._meta.concrete_fields}
            for c in campaign.calls.order_by("order_id")
        ]
        events = list(
            CallEvent.objects.filter(call__campaign=campaign)
            .order_by("call__order_id")
            .values_list("kind", "data")
        )
        return same_everywhere(orders), same_everywhere(calls), events, campaign.status

    by_command = Campaign.objects.get(store=store, name="May")
    on_page.refresh_from_db()
    assert stored(by_command) == stored(on_page)
    assert [o["order_id"] for o in stored(by_command)[0]] == ["ORD-1", "ORD-3"]
    assert by_command.status == Campaign.Status.RUNNING


# --- export_calls ---------------------------------------------------------------------------------


def exported_rows(*args: str) -> list[list[str]]:
    out, _ = run_command("export_calls", *args)
    return list(csv.reader(io.StringIO(out, newline="")))


def make_call(campaign: Campaign, order_id: str, **fields) -> Call:
    created = fields.pop("created_at", dt.datetime(2025, 5, 1, 7, 30, tzinfo=dt.UTC))
    return create_call(
        store=campaign.store,
        campaign=campaign,
        order_id=order_id,
        phone="923001234567",
        amount=Decimal("1500.00"),
        voice_id=102,
        created_at=created,
        **fields,
    )


def test_export_writes_the_documented_columns_with_times_in_the_stores_zone(store):
    campaign = Campaign.objects.create(store=store, name="May")
    make_call(
        campaign,
        "ORD-1",
        state=Call.State.FINAL,
        outcome=Call.Outcome.CONFIRMED,
        call_status=2,
        dtmf=1,
        retry=1,
        call_charges=Decimal("6.90"),
        provider_call_id="20076",
        finalized_at=dt.datetime(2025, 5, 1, 7, 32, 5, tzinfo=dt.UTC),
    )
    make_call(campaign, "ORD-2", created_at=dt.datetime(2025, 5, 1, 8, 0, tzinfo=dt.UTC))

    header, confirmed, queued = exported_rows()

    assert (
        header
        == CALL_EXPORT_COLUMNS
        == [
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
    )
    assert confirmed == [
        "ORD-1",
        "Karachi Kitchenware",
        "0300 1234567",  # as the pages write it
        "1500.00",
        "May",
        "final",
        "confirmed",
        "2",
        "1",
        "1",
        "6.90",
        "20076",
        "2025-05-01T12:30:00+05:00",
        "2025-05-01T12:32:05+05:00",
    ]
    assert queued == [
        "ORD-2",
        "Karachi Kitchenware",
        "0300 1234567",  # as the pages write it
        "1500.00",
        "May",
        "queued",
        "",
        "",
        "",
        "",
        "",
        "",
        "2025-05-01T13:00:00+05:00",
        "",
    ]


@pytest.mark.parametrize(
    ("order_id", "cell"),
    [
        ('=HYPERLINK("http://evil.example","x")', '\'=HYPERLINK("http://evil.example","x")'),
        ("+92300", "'+92300"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("ORD=1", "ORD=1"),
    ],
)
def test_export_defuses_cells_a_spreadsheet_would_run_as_formulas(store, order_id, cell):
    make_call(Campaign.objects.create(store=store, name="May"), order_id)

    assert exported_rows()[1][0] == cell


def test_the_page_stream_and_the_command_write_the_same_csv(store):
    campaign = Campaign.objects.create(store=store, name="May")
    for i in range(450):  # more than one streamed chunk
        make_call(campaign, f"ORD-{i}", created_at=timezone.now() + dt.timedelta(seconds=i))
    calls = Call.objects.order_by("created_at", "id")
    written = io.StringIO(newline="")

    assert write_calls_csv(calls, written) == 450
    # The page's file starts with the BOM Excel needs; the command's (for scripts) does not.
    assert "".join(iter_calls_csv(calls)) == "\ufeff" + written.getvalue()
    out, _ = run_command("export_calls")
    assert out == written.getvalue()


def test_export_orders_writes_one_row_per_order_with_its_calls_and_decision(store, agent_user):
    may = Campaign.objects.create(store=store, name="May")
    june = Campaign.objects.create(store=store, name="June")
    may_1 = dt.datetime(2025, 5, 1, 7, 30, tzinfo=dt.UTC)
    first = make_call(
        may,
        "K-1",
        state=Call.State.FINAL,
        outcome=Call.Outcome.UNREACHABLE,
        call_charges=Decimal("0.00"),
        finalized_at=may_1,
    )
    make_call(
        may,
        "K-1",
        parent=first,
        shop_order=first.shop_order,
        state=Call.State.FINAL,
        outcome=Call.Outcome.CONFIRMED,
        call_charges=Decimal("11.00"),
        finalized_at=may_1,
        created_at=may_1 + dt.timedelta(hours=1),
    )
    by_hand = make_call(
        june,
        "=HYPERLINK(1)",
        state=Call.State.FINAL,
        outcome=Call.Outcome.CALLBACK_REQUESTED,
        call_charges=Decimal("5.50"),
        finalized_at=may_1,
    )
    decide_by_hand(by_hand.shop_order, agent_user, Order.Decision.CANCELLED, "by phone")
    make_call(june, "K-3")  # queued: no decision, no charge yet

    rows = list(csv.reader(io.StringIO(run_command("export_orders")[0], newline="")))

    assert rows[0] == ORDER_EXPORT_COLUMNS
    body = {row[0]: row[1:] for row in rows[1:]}
    assert len(rows) == 4
    assert body["K-1"][:9] == [
        store.name,
        "0300 1234567",
        "confirmed",
        "confirmed",
        "customer (key press)",
        "2",
        "confirmed",
        "11.00",
        "csv",
    ]
    assert body["K-1"][9] == "2025-05-01T12:30:00+05:00"  # the store's zone
    assert body["'=HYPERLINK(1)"][2:8] == [
        "cancelled",
        "cancelled",
        "bilal",
        "1",
        "callback_requested",
        "5.50",
    ]
    assert body["K-3"][2:8] == ["waiting", "", "", "1", "", "0.00"]
    june_only = run_command("export_orders", "--campaign", "June", "--store", store.name)[0]
    assert sorted(r[0] for r in list(csv.reader(io.StringIO(june_only)))[1:]) == [
        "'=HYPERLINK(1)",
        "K-3",
    ]
    error, _ = failing_command("export_orders", "--store", "Nowhere")
    assert "no store named 'Nowhere'" in str(error)


def test_export_filters_by_campaign_and_store(store):
    other_store = Store(name="Lahore Linen")
    other_store.api_key = "sk-other-0000000000"
    other_store.save()
    may = Campaign.objects.create(store=store, name="May")
    make_call(may, "K-MAY")
    make_call(Campaign.objects.create(store=store, name="June"), "K-JUNE")
    make_call(Campaign.objects.create(store=other_store, name="May"), "L-MAY")

    def order_ids(*args: str) -> list[str]:
        return sorted(row[0] for row in exported_rows(*args)[1:])

    assert order_ids() == ["K-JUNE", "K-MAY", "L-MAY"]
    assert order_ids("--store", store.name) == ["K-JUNE", "K-MAY"]
    assert order_ids("--campaign", "June") == ["K-JUNE"]
    assert order_ids("--campaign", "May", "--store", "Lahore Linen") == ["L-MAY"]
    error, _ = failing_command("export_calls", "--campaign", "May")
    assert "exists in several stores" in str(error)
    error, _ = failing_command("export_calls", "--campaign", "July")
    assert "no campaign named 'July'" in str(error)
    error, _ = failing_command("export_calls", "--store", "Nowhere")
    assert "no store named 'Nowhere'" in str(error)


# --- add_store ----------------------------------------------------------------------------------


def test_add_store_verifies_the_key_and_stores_it_encrypted_with_its_settings(
    db, provider_url, monkeypatch
):
    monkeypatch.setenv("ROBOCALL_API_KEY", TEST_API_KEY)

    out, err = run_command(
        "add_store",
        "Quetta Quilts",
        *("--voice-id", "48", "--calling-hours", "10:00-20:30", "--provider-retries", "2"),
        *("--retry-delays", "60,120", "--low-balance", "750.50", "--timezone", "Asia/Dubai"),
        *("--reattempts", "3", "--reattempt-gap", "45"),
    )

    assert "Store 'Quetta Quilts' added." in out
    store = Store.objects.get(name="Quetta Quilts")
    assert store.api_key == TEST_API_KEY
    assert TEST_API_KEY not in store.api_key_encrypted
    assert store.key_verified_at is not None
    assert (store.default_voice_id, store.calling_start, store.calling_end) == (
        48,
        dt.time(10, 0),
        dt.time(20, 30),
    )
    assert (store.provider_retries, store.retry_delays) == (2, [60, 120])
    assert (store.low_balance_threshold, store.timezone) == (Decimal("750.50"), "Asia/Dubai")
    assert (store.reattempts, store.reattempt_gap_minutes) == (3, 45)
    assert TEST_API_KEY not in out + err


def test_add_store_with_a_key_the_provider_does_not_match_stores_nothing(
    db, provider_url, monkeypatch
):
    monkeypatch.setenv("ROBOCALL_API_KEY", "sk-live-not-a-real-key-123456")

    error, output = failing_command("add_store", "Quetta Quilts")

    assert "the provider says this API key is not matched" in str(error)
    assert "nothing was stored" in str(error)
    assert not Store.objects.exists()
    assert "sk-live-not-a-real-key" not in str(error) + output


def test_add_store_with_the_provider_unreachable_stores_it_unverified_with_a_warning(
    db, settings, monkeypatch
):
    settings.ROBOCALL_BASE_URL = closed_port_url()
    monkeypatch.setenv("ROBOCALL_API_KEY", TEST_API_KEY)

    out, err = run_command("add_store", "Quetta Quilts")

    assert "added" in out
    assert "the API key is not verified yet" in err
    assert Store.objects.get().key_verified_at is None
    assert TEST_API_KEY not in out + err


def test_add_store_without_the_key_in_the_environment_is_an_error(db, monkeypatch):
    monkeypatch.delenv("ROBOCALL_API_KEY", raising=False)

    error, _ = failing_command("add_store", "Quetta Quilts")

    assert "ROBOCALL_API_KEY" in str(error)
    assert not Store.objects.exists()


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--voice-id", "abc", "--voice-id must be a positive whole number, not 'abc'"),
        ("--voice-id", "0", "--voice-id must be a positive whole number, not '0'"),
        ("--calling-hours", "9-21", "--calling-hours must look like 09:00-21:00"),
        ("--calling-hours", "25:00-21:00", "is not a time of day"),
        ("--provider-retries", "-1", "--provider-retries must be a whole number from 0 to 10"),
        ("--provider-retries", "11", "--provider-retries must be a whole number from 0 to 10"),
        ("--provider-retries", "5", "Give one delay for each of the 5 retries"),
        ("--retry-delays", "300,abc", "--retry-delays must be positive whole seconds"),
        ("--retry-delays", "0,600,1800", "--retry-delays must be positive whole seconds"),
        ("--retry-delays", "300,600", "Give one delay for each of the 3 retries"),
        ("--low-balance", "-5", "--low-balance must be an amount in rupees of 0 or more"),
        ("--low-balance", "lots", "--low-balance must be an amount in rupees of 0 or more"),
        ("--low-balance", "1.234", "--low-balance must be an amount in rupees of 0 or more"),
        ("--timezone", "Mars/Olympus", "'Mars/Olympus' is not a known time zone"),
        ("--reattempts", "11", "--reattempts must be a whole number from 0 to 10, not '11'"),
        ("--reattempts", "two", "--reattempts must be a whole number from 0 to 10, not 'two'"),
        ("--reattempt-gap", "0", "--reattempt-gap must be a whole number from 1 to 10080"),
        (
            "--after-last-attempt",
            "drop",
            "--after-last-attempt must be queue or cancel, not 'drop'",
        ),
    ],
)
def test_add_store_refuses_each_bad_option_before_sending_the_key_anywhere(
    db, simulator, provider_url, monkeypatch, option, value, message
):
    monkeypatch.setenv("ROBOCALL_API_KEY", TEST_API_KEY)

    error, _ = failing_command("add_store", "Quetta Quilts", option, value)

    assert message in str(error)
    assert not Store.objects.exists()
    assert simulator.stats()["requests"].get("user_verify", 0) == 0
    assert simulator.stats()["requests"].get("check_balance", 0) == 0


def test_add_store_with_equal_start_and_end_hours_calls_round_the_clock_as_the_page_does(
    db, provider_url, monkeypatch
):
    monkeypatch.setenv("ROBOCALL_API_KEY", TEST_API_KEY)

    out, _ = run_command("add_store", "Quetta Quilts", "--calling-hours", "09:00-09:00")

    assert "Store 'Quetta Quilts' added." in out
    store = Store.objects.get(name="Quetta Quilts")
    assert (store.calling_start, store.calling_end) == (dt.time(9, 0), dt.time(9, 0))
    assert store.calls_around_the_clock
    assert store.in_calling_hours(dt.datetime(2025, 5, 1, 3, 0, tzinfo=store.zone))


def test_add_store_sets_what_happens_after_the_last_attempt_as_the_page_does(store, monkeypatch):
    monkeypatch.delenv("ROBOCALL_API_KEY", raising=False)
    assert store.after_last_attempt == Store.AfterLastAttempt.QUEUE

    run_command("add_store", store.name, "--update", "--after-last-attempt", "cancel")

    store.refresh_from_db()
    assert store.after_last_attempt == Store.AfterLastAttempt.CANCEL
    run_command("add_store", store.name, "--update", "--calling-hours", "09:00-21:00")
    store.refresh_from_db()
    assert store.after_last_attempt == Store.AfterLastAttempt.CANCEL  # left as it was


def test_add_store_refuses_an_existing_name_without_update(store, monkeypatch):
    monkeypatch.setenv("ROBOCALL_API_KEY", TEST_API_KEY)

    error, _ = failing_command("add_store", store.name)

    assert "exists already: add --update" in str(error)
    error, _ = failing_command("add_store", "Nowhere Store", "--update")
    assert "no store named 'Nowhere Store' to update" in str(error)


def test_add_store_update_changes_settings_and_keeps_the_key_when_none_is_given(store, monkeypatch):
    monkeypatch.delenv("ROBOCALL_API_KEY", raising=False)
    Store.objects.filter(pk=store.pk).update(key_verified_at=timezone.now())

    out, _ = run_command("add_store", store.name, "--update", "--calling-hours", "22:00-02:00")

    assert "updated" in out
    store.refresh_from_db()
    assert (store.calling_start, store.calling_end) == (dt.time(22, 0), dt.time(2, 0))
    assert store.api_key == TEST_API_KEY
    assert store.key_verified_at is not None


def test_add_store_update_with_a_wrong_key_keeps_the_old_one(store, provider_url, monkeypatch):
    monkeypatch.setenv("ROBOCALL_API_KEY", "sk-live-not-a-real-key-123456")

    error, _ = failing_command("add_store", store.name, "--update", "--voice-id", "49")

    assert "not matched" in str(error)
    store.refresh_from_db()
    assert (store.api_key, store.default_voice_id) == (TEST_API_KEY, 102)


# --- add_user -----------------------------------------------------------------------------------


def test_add_user_creates_a_user_with_one_role_and_the_password_from_the_environment(
    db, monkeypatch
):
    monkeypatch.setenv("ROBODASH_PASSWORD", "correct-horse-battery")

    out, _ = run_command("add_user", "zara", "--role", "manager")

    user = User.objects.get(username="zara")
    assert user.role == User.Role.MANAGER
    assert user.check_password("correct-horse-battery")
    assert "correct-horse-battery" not in out
    assert "User 'zara' (manager) added." in out


@pytest.mark.parametrize(
    ("args", "password", "message"),
    [
        (
            ("--role", "agent"),
            None,
            "set the password in the environment variable ROBODASH_PASSWORD",
        ),
        (
            ("--role", "boss"),
            "correct-horse-battery",
            "--role must be one of admin, agent, manager",
        ),
        ((), "correct-horse-battery", "--role is required"),
        (("--role", "agent"), "short", "too short"),
        (("--role", "agent"), "password123", "too common"),
    ],
)
def test_add_user_refuses_bad_input_and_creates_nobody(db, monkeypatch, args, password, message):
    if password is None:
        monkeypatch.delenv("ROBODASH_PASSWORD", raising=False)
    else:
        monkeypatch.setenv("ROBODASH_PASSWORD", password)

    error, _ = failing_command("add_user", "zara", *args)

    assert message in str(error)
    assert not User.objects.filter(username="zara").exists()


def test_add_user_update_changes_the_role_and_keeps_the_password(agent_user, monkeypatch):
    monkeypatch.setenv("ROBODASH_PASSWORD", "correct-horse-battery")
    error, _ = failing_command("add_user", agent_user.username, "--role", "admin")
    assert "exists already: add --update" in str(error)

    monkeypatch.delenv("ROBODASH_PASSWORD")
    run_command("add_user", agent_user.username, "--role", "admin", "--update")

    agent_user.refresh_from_db()
    assert agent_user.role == User.Role.ADMIN
    assert agent_user.check_password("pw-agent-123")


# --- the key never leaks ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_api_key_appears_in_no_command_output_and_no_database_column(simulator, tmp_path):
    env = {"ROBOCALL_BASE_URL": simulator.base_url}
    outputs = []
    added = manage(
        "add_store", "Key Test", "--low-balance", "0", ROBOCALL_API_KEY=TEST_API_KEY, **env
    )
    assert added.returncode == 0, added.stderr
    outputs.append(added)
    imported = manage(
        "import_calls",
        str(write_csv(tmp_path, *ORDERS)),
        "--campaign",
        "May",
        "--store",
        "Key Test",
        **env,
    )
    assert imported.returncode == 0, imported.stderr
    outputs.append(imported)
    outputs.append(manage("export_calls", **env))
    outputs.append(manage("add_store", "Key Test", ROBOCALL_API_KEY=TEST_API_KEY, **env))  # exists
    wrong = manage("add_store", "Other", ROBOCALL_API_KEY=TEST_API_KEY + "x", **env)
    assert wrong.returncode == 1
    outputs.append(wrong)

    for result in outputs:
        assert TEST_API_KEY not in result.stdout + result.stderr

    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f'SELECT t::text FROM "{table}" t')  # every column of every row
            for (row,) in cursor.fetchall():
                assert TEST_API_KEY not in row, f"the API key is stored in plain text in {table}"
    assert Store.objects.get(name="Key Test").api_key == TEST_API_KEY


def test_add_store_refuses_a_name_over_100_characters_naming_the_limit(db, monkeypatch):
    monkeypatch.setenv("ROBOCALL_API_KEY", TEST_API_KEY)

    error, _ = failing_command("add_store", "Q" * 101)

    assert "the store name is longer than 100 characters" in str(error)
    assert not Store.objects.exists()
