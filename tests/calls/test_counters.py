"""The daily figures PostgreSQL counts as calls change (calls/figures/counters.py), and the readers
that add them up (stats.figures_grouped): always exactly the numbers of counting the calls.

Beside these tests, tests/conftest.py compares the counted figures with a direct count after
every test of the suite that touches the database."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.db.models import F, Q
from django.db.models.functions import TruncDate, TruncWeek
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from calls import transitions
from calls.figures import counters, stats
from calls.models import Call, Campaign, DailyFigures, Order, Store
from tests.calls.test_stats import add_calls
from tests.support.pipeline import ROOT, child_database_url

Outcome = Call.Outcome
GROUPINGS = ("day", "week", "campaign", "voice", "store")
DAYS_OF_DATA = 15


def today() -> dt.date:
    return stats.today_in(stats.reporting_zone())


def days_ago(n: int, hour: int = 12) -> dt.datetime:
    """`hour` o'clock, `n` days ago, in the reporting zone."""
    day = today() - dt.timedelta(days=n)
    return dt.datetime.combine(day, dt.time(hour), tzinfo=stats.reporting_zone())


@pytest.fixture
def other_store(db) -> Store:
    store = Store(name="Lahore Looms", default_voice_id=105)
    store.api_key = "sk-other-0000000000000000"
    store.save()
    return store


@pytest.fixture
def history(store: Store, other_store: Store) -> dict[str, Campaign]:
    """Two weeks of calls in three campaigns of two stores, three voices (two in "Sale"), every
    outcome, charges;
    a few calls of each day just after and just before midnight (the zone's day boundaries)."""
    campaigns = {
        "orders": Campaign.objects.create(store=store, name="Orders"),
        "sale": Campaign.objects.create(store=store, name="Sale", voice_id=48),
        "lahore": Campaign.objects.create(store=other_store, name="Lahore"),
    }
    for n in range(DAYS_OF_DATA):
        orders, sale, lahore = campaigns.values()
        add_calls(
            orders, 1 + n % 3, outcome=Outcome.CONFIRMED, charges="11.00", created_at=days_ago(n)
        )
        add_calls(orders, 1, outcome=Outcome.CANCELLED, charges="5.50", created_at=days_ago(n, 0))
        add_calls(
            orders, 1, outcome=Outcome.UNREACHABLE, charges="0.00", created_at=days_ago(n, 23)
        )
        add_calls(
            sale, 2, outcome=Outcome.NO_INPUT, charges="0.90", created_at=days_ago(n), voice_id=48
        )
        add_calls(sale, 1, outcome=Outcome.WITHDRAWN, created_at=days_ago(n), voice_id=48)
        add_calls(
            sale, 1, outcome=Outcome.CALLBACK_REQUESTED, charges="5.50", created_at=days_ago(n)
        )
        add_calls(
            lahore,
            n % 4,
            outcome=Outcome.CONFIRMED,
            charges="6.00",
            created_at=days_ago(n),
            voice_id=105,
        )
        add_calls(lahore, 1, outcome=Outcome.FAILED, created_at=days_ago(n), voice_id=105)
        add_calls(lahore, 1, outcome=Outcome.NEEDS_REVIEW, created_at=days_ago(n, 1), voice_id=105)
    # Today is still moving: calls waiting and with the provider.
    add_calls(campaigns["orders"], 2, state=Call.State.QUEUED, created_at=days_ago(0))
    add_calls(
        campaigns["lahore"], 1, state=Call.State.IN_PROGRESS, created_at=days_ago(0), voice_id=105
    )
    return campaigns


def counted_live(by: str, first: dt.date, last: dt.date, store: Store | None) -> dict[Any, Any]:
    """The figures counted from the calls and the orders by plain GROUP BY queries, not the
    counted rows."""
    zone = stats.reporting_zone()
    calls = Call.objects.all() if store is None else Call.objects.filter(store=store)
    if by == "day":
        counted = {d: f for d, f in stats.daily_figures(calls, first, last, zone) if f.calls}
    elif by == "week":
        counted = {m: f for m, f in stats.weekly_figures(calls, first, last, zone) if f.calls}
    else:
        key = {"campaign": "campaign_id", "voice": "voice_id", "store": "store_id"}[by]
        counted = stats.figures_by(stats.created_between(calls, first, last, zone), key)
    orders = Order.objects.all() if store is None else Order.objects.filter(store=store)
    orders = orders.filter(
        created_at__gte=stats.local_day_start(first, zone),
        created_at__lt=stats.local_day_start(last + dt.timedelta(days=1), zone),
    )
    for key, figures in orders_counted_by(orders, by, zone).items():
        counted[key] = counted[key] + figures if key in counted else figures
    return {key: figures for key, figures in counted.items() if figures != stats.Figures()}


def orders_counted_by(orders: Any, by: str, zone: Any) -> dict[Any, stats.Figures]:
    """The orders' figures per day, week (its Monday), campaign, voice id or store, counted
    directly."""
    if by == "day":
        orders, key = orders.annotate(key=TruncDate("created_at", tzinfo=zone)), "key"
    elif by == "week":
        orders, key = orders.annotate(key=TruncWeek("created_at", tzinfo=zone)), "key"
    else:
        key = {"campaign": "campaign_id", "voice": "voice_id", "store": "store_id"}[by]
    rows = orders.order_by().values(key).annotate(**stats.order_figure_aggregates())
    found = {}
    for row in rows:
        group = row[key]
        if isinstance(group, dt.datetime):
            group = group.astimezone(zone).date()
        found[group] = stats.Figures.from_row(row)
    return found


def figures_now() -> stats.Figures:
    return stats.figures_total()


def assert_exact() -> None:
    assert counters.mismatches() == []


# --- The same numbers ----------------------------------------------------------------------


@pytest.mark.parametrize("by", GROUPINGS)
@pytest.mark.parametrize("one_store", [False, True], ids=["all stores", "one store"])
def test_the_daily_figures_are_exactly_the_figures_of_counting_the_calls(
    history, store, by, one_store
):
    first = today() - dt.timedelta(days=DAYS_OF_DATA - 1)
    chosen = store if one_store else None
    expected = counted_live(by, first, today(), chosen)

    assert DailyFigures.objects.count() >= DAYS_OF_DATA * 4  # read from the counted rows
    assert stats.figures_grouped(by, first_day=first, last_day=today(), store=chosen) == expected
    together = stats.figures_grouped_many(
        GROUPINGS, first_day=first, last_day=today(), store=chosen
    )
    assert together[by] == expected
    total = stats.figures_total(first_day=first, last_day=today(), store=chosen)
    assert total == stats.Figures.total(expected.values())
    inner = (today() - dt.timedelta(days=9), today() - dt.timedelta(days=4))
    assert stats.figures_grouped(
        by, first_day=inner[0], last_day=inner[1], store=chosen
    ) == counted_live(by, *inner, chosen)


def test_the_figures_of_campaigns_over_all_time_match_counting_their_calls(history):
    ids = [history["orders"].pk, history["lahore"].pk]
    expected = stats.figures_by(Call.objects.filter(campaign_id__in=ids), "campaign_id")
    orders = Order.objects.filter(campaign_id__in=ids)
    for campaign, figures in orders_counted_by(orders, "campaign", None).items():
        expected[campaign] += figures

    assert stats.figures_grouped("campaign", campaigns=ids) == expected
    assert stats.figures_total(campaigns=ids) == stats.Figures.total(expected.values())
    assert expected[history["orders"].pk].queued == 2  # today's moving calls are in


def test_the_readers_use_the_counted_rows_not_the_calls(history):
    day = today() - dt.timedelta(days=3)
    before = stats.figures_grouped("day", first_day=day, last_day=day)[day]
    one_row = DailyFigures.objects.filter(day=day)[:1].values("pk")
    DailyFigures.objects.filter(pk__in=one_row).update(confirmed=F("confirmed") + 100)

    after = stats.figures_grouped("day", first_day=day, last_day=day)[day]

    assert after.confirmed == before.confirmed + 100
    DailyFigures.objects.filter(pk__in=one_row).update(confirmed=F("confirmed") - 100)


def _page_figures(client) -> dict[str, Any]:
    """What the pages show, as the figures in their contexts."""
    overview = client.get(reverse("overview")).context
    reports = client.get(reverse("reports") + "?period=week").context
    reports_by_day = client.get(reverse("reports")).context
    campaigns = client.get(reverse("campaign_list")).context
    return {
        "overview periods": [(p.label, p.figures) for p in overview["periods"]],
        "overview chart": [(bar.day, bar.figures) for bar in overview["chart"]["bars"]],
        "reports": [
            (table.group, [(row.label, row.figures) for row in table.rows], table.total)
            for context in (reports, reports_by_day)
            for table in context["tables"]
        ],
        "campaigns": [(c.pk, figures) for c, figures, _finished in campaigns["rows"]],
    }


def test_the_pages_show_the_same_numbers_as_counting_the_calls_live(
    client, admin_user, history, monkeypatch
):
    client.force_login(admin_user)
    counted = _page_figures(client)

    # The readers' other path (taken while the figures are being counted again in a new zone).
    monkeypatch.setattr(stats, "is_current", lambda zone: False)
    live = _page_figures(client)

    assert counted == live
    month = dict(live["overview periods"])["Last 30 days"]
    assert month.calls == Call.objects.count()
    assert month.charges == sum(
        (c.call_charges for c in Call.objects.filter(~Q(call_charges=None))), Decimal("0.00")
    )


def _queries_for(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_pages_run_as_many_queries_for_many_days_and_campaigns_as_for_few(
    client, admin_user, store
):
    campaign = Campaign.objects.create(store=store, name="Queries")
    add_calls(campaign, 3, outcome=Outcome.CONFIRMED, created_at=days_ago(3))
    add_calls(campaign, 3, outcome=Outcome.CONFIRMED, created_at=days_ago(0))
    client.force_login(admin_user)
    pages = [reverse("overview"), reverse("reports"), reverse("campaign_list")]
    with_few = [_queries_for(client, url) for url in pages]

    for n in range(4, 29, 2):
        other = Campaign.objects.create(store=store, name=f"Day {n}")
        add_calls(other, 10, outcome=Outcome.NO_INPUT, created_at=days_ago(n), voice_id=100 + n)
    with_many = [_queries_for(client, url) for url in pages]

    assert with_many == with_few


# --- Every writer is counted ---------------------------------------------------------------


def test_every_transition_of_a_call_is_counted_as_it_happens(store, agent_user):
    campaign = Campaign.objects.create(store=store, name="Walk")
    order = Order.objects.create(
        store=store, campaign=campaign, order_id="W-1", phone="923001234567",
        amount=Decimal("900.00"), voice_id=102,
    )  # fmt: skip
    now = timezone.now()

    call = transitions.queue_call(order, campaign_id=campaign.pk, scheduled_for=now)
    assert (figures_now().calls, figures_now().queued) == (1, 1)
    transitions.start_sending(call, now)
    assert (figures_now().queued, figures_now().in_flight) == (0, 1)
    # The sending lease runs out: needs review; then the provider's late acceptance reopens it.
    call.refresh_from_db()
    transitions.finish(call, Outcome.NEEDS_REVIEW, now, reason="lease ran out")
    assert (figures_now().in_flight, figures_now().needs_review) == (0, 1)
    assert transitions.mark_sent(call, "PV-1", now)
    assert (figures_now().needs_review, figures_now().in_flight, figures_now().placed) == (0, 1, 1)
    call.refresh_from_db()
    call.call_charges = Decimal("5.50")
    transitions.finish(call, Outcome.CALLBACK_REQUESTED, now)
    assert (figures_now().callback_requested, figures_now().charges) == (1, Decimal("5.50"))
    transitions.decide_by_hand(order, agent_user, Order.Decision.CONFIRMED, "on WhatsApp")
    assert (figures_now().decided_confirmed, figures_now().decided_by_hand) == (1, 1)
    later = Campaign.objects.create(store=store, name="Walk again")
    again = transitions.queue_call(order, campaign_id=later.pk, scheduled_for=now)
    assert transitions.withdraw(again, agent_user)
    assert (figures_now().calls, figures_now().withdrawn, figures_now().queued) == (2, 1, 0)
    assert_exact()


def test_an_import_raw_sql_and_a_delete_are_counted(store, tmp_path):
    keep = Campaign.objects.create(store=store, name="Keep")
    add_calls(keep, 3, outcome=Outcome.CONFIRMED, charges="5.50")
    csv = tmp_path / "orders.csv"
    csv.write_text(
        "order_id,phone,amount,store_name\n"
        + "".join(f"IMP-{n},0300123456{n},1500,Karachi Kitchenware\n" for n in range(5))
    )
    call_command("import_calls", str(csv), "--campaign", "Imported", "--store", store.name)
    assert figures_now().calls == 8 and figures_now().queued == 5
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE calls_call SET state = 'final', outcome = 'no_input', sent_at = now() "
            "WHERE campaign_id <> %s",
            [keep.pk],
        )
    assert figures_now().no_input == 5 and figures_now().placed == 8
    assert_exact()

    Call.objects.filter(campaign__name="Imported").delete()  # and their events, by Django

    assert figures_now() == stats.figures_of(Call.objects.filter(campaign=keep))
    assert_exact()


def _finish_one(call_id: int, outcome: str, barrier: threading.Barrier, errors: list) -> None:
    """A worker's two transactions for one call: the claim, then the final status."""
    try:
        barrier.wait()
        with transaction.atomic():
            transitions.start_sending(
                Call.objects.select_for_update().get(pk=call_id), timezone.now()
            )
        with transaction.atomic():
            locked = Call.objects.select_for_update().get(pk=call_id)
            locked.call_charges = Decimal("1.00")
            transitions.finish(locked, outcome, timezone.now())
    except BaseException as exc:  # reported by the test, not lost in the thread
        errors.append(exc)
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_changing_one_group_keep_it_exact(store):
    campaign = Campaign.objects.create(store=store, name="Busy")
    calls = add_calls(campaign, 16, state=Call.State.QUEUED)
    outcomes = [Outcome.CONFIRMED, Outcome.CANCELLED, Outcome.NO_INPUT, Outcome.UNREACHABLE]
    barrier = threading.Barrier(len(calls), timeout=30)
    errors: list[BaseException] = []
    workers = [
        threading.Thread(target=_finish_one, args=(c.pk, outcomes[n % 4], barrier, errors))
        for n, c in enumerate(calls)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)

    assert errors == []
    figures = figures_now()
    assert (figures.finished, figures.confirmed, figures.unreachable) == (16, 4, 4)
    assert figures.charges == Decimal("16.00")
    assert_exact()


CHILD = """
import json, os, sys
import psycopg
conn = psycopg.connect(sys.argv[1])
conn.execute(
    "UPDATE calls_call SET state = 'final', outcome = 'confirmed', call_charges = 9 "
    "WHERE id = %s", [int(sys.argv[2])]
)
print(json.dumps({"pid": os.getpid()}), flush=True)
sys.stdin.read()  # holds the open transaction until killed
"""


def _conninfo() -> str:
    settings = connection.settings_dict
    parts = {
        "dbname": settings["NAME"],
        "user": settings["USER"],
        "password": settings["PASSWORD"],
        "host": settings["HOST"],
        "port": settings["PORT"],
    }
    return " ".join(f"{k}='{v}'" for k, v in parts.items() if v)


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_transaction_leaves_no_trace_in_the_figures(store):
    campaign = Campaign.objects.create(store=store, name="Killed")
    [call] = add_calls(campaign, 1, state=Call.State.IN_PROGRESS)
    before = figures_now()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, _conninfo(), str(call.pk)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        started = json.loads(child.stdout.readline())  # its UPDATE (and trigger) has run
        assert figures_now() == before  # not committed: invisible
        os.kill(started["pid"], signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        child.kill()

    # The server notices the dead connection and rolls its transaction back.
    with psycopg.connect(_conninfo(), autocommit=True) as conn:
        conn.execute("SELECT 1")
    assert figures_now() == before
    assert Call.objects.get(pk=call.pk).state == Call.State.IN_PROGRESS
    assert_exact()


@pytest.mark.django_db(transaction=True)
def test_an_update_that_changes_no_figure_takes_no_counter_lock(store):
    campaign = Campaign.objects.create(store=store, name="Polls")
    [call] = add_calls(campaign, 1, state=Call.State.IN_PROGRESS)
    with psycopg.connect(_conninfo()) as holder:
        holder.execute("SELECT * FROM calls_dailyfigures WHERE campaign_id = %s FOR UPDATE",
                       [campaign.pk])  # fmt: skip
        with psycopg.connect(_conninfo(), autocommit=True) as writer:
            writer.execute("SET lock_timeout = '500ms'")
            # A poll's bookkeeping: no figure changes, so no wait on the locked row.
            writer.execute(
                "UPDATE calls_call SET next_poll_at = now(), poll_count = poll_count + 1 "
                "WHERE id = %s",
                [call.pk],
            )
            # A real change waits for the row (and gives up here): the lock was real.
            with pytest.raises(psycopg.errors.LockNotAvailable):
                writer.execute(
                    "UPDATE calls_call SET state = 'final', outcome = 'no_input' WHERE id = %s",
                    [call.pk],
                )
        holder.rollback()
    assert_exact()


# --- The zone, the command, beat -----------------------------------------------------------


def test_after_the_zone_changes_migrate_counts_every_figure_again_in_it(history, settings):
    settings.ROBODASH_DEFAULT_STORE_TIMEZONE = "America/New_York"
    first = today() - dt.timedelta(days=DAYS_OF_DATA - 1)
    expected = counted_live("day", first, today(), None)
    assert not stats.is_current(stats.reporting_zone())

    call_command("migrate", verbosity=0)  # what every start runs

    assert stats.counted_zone() == "America/New_York"
    assert stats.figures_grouped("day", first_day=first, last_day=today()) == expected
    assert counters.rebuild_if_zone_changed() is False  # nothing to do now
    assert_exact()


@pytest.mark.django_db(transaction=True)
def test_a_deployment_in_another_zone_counts_a_call_near_midnight_on_its_own_day(store):
    campaign = Campaign.objects.create(store=store, name="Late orders")
    # 01:30 on 11 March in Karachi, 16:30 on 10 March in New York.
    add_calls(
        campaign,
        1,
        outcome=Outcome.CONFIRMED,
        created_at=dt.datetime(2026, 3, 10, 20, 30, tzinfo=dt.UTC),
    )
    march = {"first_day": dt.date(2026, 3, 9), "last_day": dt.date(2026, 3, 12)}
    assert {day: f.calls for day, f in stats.figures_grouped("day", **march).items()} == {
        dt.date(2026, 3, 11): 1
    }
    try:
        # The setting as a deployment changes it: in the environment, read by the next start.
        started = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=ROOT,
            env={
                **os.environ,
                "DATABASE_URL": child_database_url(),
                "ROBODASH_DEFAULT_STORE_TIMEZONE": "America/New_York",
            },
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert started.returncode == 0, started.stderr[-3000:]
        assert "reporting zone changed from Asia/Karachi to America/New_York" in started.stderr

        assert stats.counted_zone() == "America/New_York"
        with override_settings(ROBODASH_DEFAULT_STORE_TIMEZONE="America/New_York"):
            by_day = stats.figures_grouped("day", **march)
        assert {day: f.calls for day, f in by_day.items()} == {dt.date(2026, 3, 10): 1}
        assert DailyFigures.objects.get(campaign=campaign).day == dt.date(2026, 3, 10)
        assert_exact()
    finally:
        counters.rebuild()  # back to this process's zone for the tests after this one


def test_the_zone_is_read_from_the_environment_and_a_name_that_is_none_refused(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from robodash.settings import envzone

    monkeypatch.setenv("ROBODASH_DEFAULT_STORE_TIMEZONE", "America/New_York")
    assert envzone("ROBODASH_DEFAULT_STORE_TIMEZONE", "Asia/Karachi") == "America/New_York"
    monkeypatch.setenv("ROBODASH_DEFAULT_STORE_TIMEZONE", "Asia/Nowhere")
    with pytest.raises(ImproperlyConfigured, match="not 'Asia/Nowhere'"):
        envzone("ROBODASH_DEFAULT_STORE_TIMEZONE", "Asia/Karachi")


def test_a_new_store_takes_the_zone_of_the_setting_it_starts_with(settings):
    settings.ROBODASH_DEFAULT_STORE_TIMEZONE = "America/New_York"

    assert Store(name="Brooklyn Bazaar").timezone == "America/New_York"


def test_the_command_checks_the_figures_and_rebuilds_them(history, capsys):
    call_command("figures", "--check")
    assert "Every figure equals a direct count of the calls and orders." in capsys.readouterr().out
    day = today() - dt.timedelta(days=4)
    DailyFigures.objects.filter(day=day).update(confirmed=F("confirmed") + 1)

    with pytest.raises(
        CommandError, match=f"datetime.date\\({day.year}, {day.month}, {day.day}\\)"
    ):
        call_command("figures", "--check")

    call_command("figures", "--rebuild", "--check")
    out = capsys.readouterr().out
    assert "Counted every call and order again in Asia/Karachi" in out
    assert "Every figure equals a direct count of the calls and orders." in out


def test_the_installed_counting_function_is_the_one_the_code_writes(db):
    """A change to the figures needs a migration installing the new function."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_functiondef('calls_count_figures'::regproc)")
        (installed,) = cursor.fetchone()

    def body(sql: str) -> str:
        inside = sql.split("$function$" if "$function$" in sql else "$$")[1]
        return " ".join(inside.split())

    assert body(installed) == body(counters.trigger_function_sql())


def test_beat_runs_no_task_for_the_zone_which_migrate_keeps():
    from robodash.celery import app

    app.loader.import_default_modules()
    app.finalize()
    entries = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert "calls.tasks.sweep_due_work" in entries
    assert not any("zone" in task for task in entries)
