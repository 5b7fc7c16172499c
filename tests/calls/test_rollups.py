"""Daily rollups (calls/rollups.py) and the readers that use them (stats.figures_grouped): the
same numbers as counting the calls, for closed days only, each day written once."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from calls import rollups, stats
from calls.models import Call, Campaign, DailyFigures, RolledUpDay, Store
from tests.calls.test_stats import add_calls

Outcome = Call.Outcome
GROUPINGS = ("day", "week", "campaign", "voice")
DAYS_OF_DATA = 15
ROWS_A_DAY = 4  # the history's (campaign, voice id) pairs


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
    """The figures counted from the calls by the plain GROUP BY queries, without any rollup."""
    zone = stats.reporting_zone()
    calls = Call.objects.all() if store is None else Call.objects.filter(store=store)
    if by == "day":
        return {d: f for d, f in stats.daily_figures(calls, first, last, zone) if f.calls}
    if by == "week":
        return {m: f for m, f in stats.weekly_figures(calls, first, last, zone) if f.calls}
    key = {"campaign": "campaign_id", "voice": "voice_id"}[by]
    return stats.figures_by(stats.created_between(calls, first, last, zone), key)


def rolled_up_days() -> list[dt.date]:
    return list(RolledUpDay.objects.order_by("day").values_list("day", flat=True))


# --- Which days are closed ------------------------------------------------------------------


def test_yesterday_and_today_are_never_closed_even_with_every_call_final(store):
    campaign = Campaign.objects.create(store=store, name="Done")
    for n in range(4):
        add_calls(campaign, 2, outcome=Outcome.CONFIRMED, created_at=days_ago(n))

    written = rollups.roll_up_closed_days()

    assert rollups.closed_before(stats.reporting_zone()) == today() - dt.timedelta(days=1)
    assert written == 2
    assert rolled_up_days() == [today() - dt.timedelta(days=3), today() - dt.timedelta(days=2)]


def test_a_day_with_an_unfinished_call_is_not_closed_and_stays_live(store):
    campaign = Campaign.objects.create(store=store, name="Stuck")
    for n in range(2, 8):
        add_calls(campaign, 3, outcome=Outcome.CONFIRMED, charges="5.50", created_at=days_ago(n))
    (stuck,) = add_calls(campaign, 1, state=Call.State.QUEUED, created_at=days_ago(5))

    rollups.roll_up_closed_days()

    assert rollups.closed_before(stats.reporting_zone()) == today() - dt.timedelta(days=5)
    assert rollups.open_days(stats.reporting_zone()) == {today() - dt.timedelta(days=5)}
    # Only its own day waits: the days after it are closed (and rolled up) all the same.
    assert rolled_up_days() == [today() - dt.timedelta(days=n) for n in (7, 6, 4, 3, 2)]
    first = today() - dt.timedelta(days=7)
    by_day = stats.figures_grouped("day", first_day=first, last_day=today())
    assert by_day == counted_live("day", first, today(), None)
    assert by_day[today() - dt.timedelta(days=5)].queued == 1
    all_time = stats.figures_grouped("campaign", campaigns=[campaign.pk])
    assert all_time == stats.figures_by(Call.objects.all(), "campaign_id")

    Call.objects.filter(pk=stuck.pk).update(state=Call.State.FINAL, outcome=Outcome.WITHDRAWN)
    rollups.roll_up_closed_days()

    assert rolled_up_days() == [today() - dt.timedelta(days=n) for n in (7, 6, 5, 4, 3, 2)]


def test_every_day_with_an_unfinished_call_is_open_however_many_calls_wait(store):
    campaign = Campaign.objects.create(store=store, name="Paused with queued calls")
    add_calls(campaign, 50, state=Call.State.QUEUED, created_at=days_ago(30, 0))
    add_calls(campaign, 3, state=Call.State.SENDING, created_at=days_ago(30, 23))
    add_calls(campaign, 2, state=Call.State.QUEUED, created_at=days_ago(12))
    add_calls(campaign, 1, state=Call.State.IN_PROGRESS, created_at=days_ago(0))
    add_calls(campaign, 9, outcome=Outcome.CONFIRMED, created_at=days_ago(20))

    assert rollups.open_days(stats.reporting_zone()) == {
        today() - dt.timedelta(days=30),
        today() - dt.timedelta(days=12),
        today(),
    }


def test_a_day_with_a_call_sent_to_review_minutes_ago_is_not_closed_yet(store):
    # The provider may still accept that send late (dispatch._mark_sent), reopening the call.
    campaign = Campaign.objects.create(store=store, name="Late")
    add_calls(campaign, 2, outcome=Outcome.CONFIRMED, created_at=days_ago(6))
    (review,) = add_calls(campaign, 1, outcome=Outcome.NEEDS_REVIEW, created_at=days_ago(4))
    Call.objects.filter(pk=review.pk).update(finalized_at=timezone.now() - dt.timedelta(minutes=3))

    assert rollups.closed_before(stats.reporting_zone()) == today() - dt.timedelta(days=4)
    assert rollups.open_days(stats.reporting_zone()) == {today() - dt.timedelta(days=4)}

    Call.objects.filter(pk=review.pk).update(finalized_at=timezone.now() - dt.timedelta(hours=1))

    assert rollups.closed_before(stats.reporting_zone()) == today() - dt.timedelta(days=1)
    assert rollups.open_days(stats.reporting_zone()) == set()


def test_a_day_found_unfinished_while_being_written_is_left_live(store):
    # As when a call of the day is reopened between closed_before and the INSERT.
    campaign = Campaign.objects.create(store=store, name="Racing")
    add_calls(campaign, 2, outcome=Outcome.CONFIRMED, created_at=days_ago(5))
    add_calls(campaign, 1, state=Call.State.IN_PROGRESS, created_at=days_ago(5))
    day = today() - dt.timedelta(days=5)

    assert rollups.roll_up_day(day, stats.reporting_zone()) == 0

    assert not RolledUpDay.objects.exists()
    assert not DailyFigures.objects.exists()


def test_a_rolled_up_day_reopened_by_a_late_acceptance_is_counted_live_and_dropped(store):
    campaign = Campaign.objects.create(store=store, name="Reopened")
    add_calls(campaign, 2, outcome=Outcome.CONFIRMED, created_at=days_ago(5))
    (review,) = add_calls(campaign, 1, outcome=Outcome.NEEDS_REVIEW, created_at=days_ago(4))
    rollups.roll_up_closed_days()
    assert today() - dt.timedelta(days=4) in rolled_up_days()

    Call.objects.filter(pk=review.pk).update(
        state=Call.State.IN_PROGRESS, outcome="", sent_at=timezone.now()
    )
    first = today() - dt.timedelta(days=6)
    by_day = stats.figures_grouped("day", first_day=first, last_day=today())

    assert by_day[today() - dt.timedelta(days=4)].in_flight == 1
    assert by_day == counted_live("day", first, today(), None)
    rollups.roll_up_closed_days()
    assert rolled_up_days() == [today() - dt.timedelta(days=n) for n in (5, 3, 2)]


# --- The same numbers ----------------------------------------------------------------------


@pytest.mark.parametrize("by", GROUPINGS)
@pytest.mark.parametrize("one_store", [False, True], ids=["all stores", "one store"])
def test_rolled_up_days_give_exactly_the_figures_of_counting_the_calls(
    history, store, by, one_store
):
    first = today() - dt.timedelta(days=DAYS_OF_DATA - 1)
    chosen = store if one_store else None
    expected = counted_live(by, first, today(), chosen)
    assert stats.figures_grouped(by, first_day=first, last_day=today(), store=chosen) == expected

    written = rollups.roll_up_closed_days()

    assert written == DAYS_OF_DATA - 2  # all but yesterday and today
    assert DailyFigures.objects.exists()
    grouped = stats.figures_grouped(by, first_day=first, last_day=today(), store=chosen)
    assert grouped == expected
    together = stats.figures_grouped_many(
        GROUPINGS, first_day=first, last_day=today(), store=chosen
    )
    assert together[by] == expected
    total = stats.figures_total(first_day=first, last_day=today(), store=chosen)
    assert total == stats.Figures.total(expected.values())
    # A range that starts and ends inside the rolled-up days, and one that is all live.
    inner = (today() - dt.timedelta(days=9), today() - dt.timedelta(days=4))
    assert stats.figures_grouped(
        by, first_day=inner[0], last_day=inner[1], store=chosen
    ) == counted_live(by, *inner, chosen)
    assert stats.figures_grouped(
        by, first_day=today() - dt.timedelta(days=1), last_day=today(), store=chosen
    ) == counted_live(by, today() - dt.timedelta(days=1), today(), chosen)


def test_the_figures_of_campaigns_over_all_time_match_counting_their_calls(history):
    ids = [history["orders"].pk, history["lahore"].pk]
    expected = stats.figures_by(Call.objects.filter(campaign_id__in=ids), "campaign_id")

    rollups.roll_up_closed_days()

    assert stats.figures_grouped("campaign", campaigns=ids) == expected
    assert stats.figures_total(campaigns=ids) == stats.Figures.total(expected.values())
    assert expected[history["orders"].pk].queued == 2  # today's live calls are in


def test_a_rolled_up_day_is_read_from_its_rollup_not_from_the_calls(history):
    rollups.roll_up_closed_days()
    day = today() - dt.timedelta(days=3)
    before = stats.figures_grouped("day", first_day=day, last_day=day)[day]

    # Behind the rollup's back (nothing in robodash changes a closed day's calls).
    Call.objects.filter(
        created_at__gte=days_ago(3, 0), created_at__lt=days_ago(2, 0), outcome=Outcome.CONFIRMED
    ).update(outcome=Outcome.CANCELLED)

    after = stats.figures_grouped("day", first_day=day, last_day=day)[day]
    assert after == before
    assert counted_live("day", day, day, None)[day].confirmed == 0


# --- Writing each day once -------------------------------------------------------------------


def test_rolling_up_twice_writes_each_day_once(history):
    first_run = rollups.roll_up_closed_days()
    rows = DailyFigures.objects.count()

    second_run = rollups.roll_up_closed_days()

    assert (first_run, second_run) == (DAYS_OF_DATA - 2, 0)
    assert DailyFigures.objects.count() == rows
    # One row per campaign and voice id of each rolled-up day: 3 campaigns, "Sale" in 2 voices.
    assert rows == ROWS_A_DAY * (DAYS_OF_DATA - 2)


def test_a_run_writes_at_most_its_limit_of_days_oldest_first(history):
    assert rollups.roll_up_closed_days(limit=5) == 5
    oldest = today() - dt.timedelta(days=DAYS_OF_DATA - 1)
    assert rolled_up_days() == [oldest + dt.timedelta(days=n) for n in range(5)]

    assert rollups.roll_up_closed_days(limit=None) == DAYS_OF_DATA - 2 - 5


def test_an_empty_day_is_rolled_up_too_so_the_covered_days_stay_in_one_run(store):
    campaign = Campaign.objects.create(store=store, name="Gaps")
    add_calls(campaign, 1, outcome=Outcome.CONFIRMED, created_at=days_ago(6))
    add_calls(campaign, 1, outcome=Outcome.CONFIRMED, created_at=days_ago(3))

    rollups.roll_up_closed_days()

    assert rolled_up_days() == [today() - dt.timedelta(days=n) for n in (6, 5, 4, 3, 2)]
    coverage = rollups.rolled_up_coverage(stats.reporting_zone())
    assert coverage.spans == ((today() - dt.timedelta(days=6), today() - dt.timedelta(days=2)),)


def _hold_day_lock(day: dt.date, locked: threading.Event, release: threading.Event) -> None:
    """Another connection holding a day's rollup lock, as a run writing it would."""
    try:
        with transaction.atomic():
            assert rollups.try_lock_day(day)
            locked.set()
            release.wait(timeout=30)
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_a_day_another_run_is_writing_is_skipped_then_written_once(history):
    busy = today() - dt.timedelta(days=5)
    locked, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold_day_lock, args=(busy, locked, release))
    holder.start()
    try:
        assert locked.wait(timeout=30)
        written = rollups.roll_up_closed_days()
    finally:
        release.set()
        holder.join(timeout=30)

    assert written == DAYS_OF_DATA - 3
    assert busy not in rolled_up_days()
    assert rollups.roll_up_closed_days() == 1
    assert DailyFigures.objects.filter(day=busy).count() == ROWS_A_DAY


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_from_two_connections_write_each_day_once(history):
    start = threading.Barrier(2, timeout=30)
    written: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            start.wait()
            written.append(rollups.roll_up_closed_days())
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)
        finally:
            connection.close()

    runs = [threading.Thread(target=run) for _ in range(2)]
    for thread in runs:
        thread.start()
    for thread in runs:
        thread.join(timeout=60)

    assert errors == []
    assert sum(written) == DAYS_OF_DATA - 2
    assert len(rolled_up_days()) == DAYS_OF_DATA - 2
    assert DailyFigures.objects.count() == ROWS_A_DAY * (DAYS_OF_DATA - 2)
    first = today() - dt.timedelta(days=DAYS_OF_DATA - 1)
    assert stats.figures_grouped("day", first_day=first, last_day=today()) == counted_live(
        "day", first, today(), None
    )


# --- The command, the zone, the task ---------------------------------------------------------


def test_the_command_rolls_up_and_rebuild_recomputes_every_day(history, capsys):
    call_command("roll_up_days")
    assert f"Rolled up {DAYS_OF_DATA - 2} days" in capsys.readouterr().out
    day = today() - dt.timedelta(days=4)
    DailyFigures.objects.filter(day=day).update(confirmed=0)  # a wrong rollup
    assert stats.figures_grouped("day", first_day=day, last_day=day)[day].confirmed == 0

    call_command("roll_up_days", "--rebuild")

    out = capsys.readouterr().out
    assert f"Deleted the rollups of {DAYS_OF_DATA - 2} days." in out
    assert f"Rolled up {DAYS_OF_DATA - 2} days" in out
    first = today() - dt.timedelta(days=DAYS_OF_DATA - 1)
    assert stats.figures_grouped("day", first_day=first, last_day=today()) == counted_live(
        "day", first, today(), None
    )


def test_the_command_refuses_a_limit_below_one(db):
    with pytest.raises(Exception, match="--limit must be 1 or more, not 0"):
        call_command("roll_up_days", "--limit", "0")


def test_days_rolled_up_in_another_zone_are_ignored_then_rolled_up_again(history, settings):
    rollups.roll_up_closed_days()
    settings.ROBODASH_DEFAULT_STORE_TIMEZONE = "America/New_York"
    first = today() - dt.timedelta(days=DAYS_OF_DATA - 1)
    expected = counted_live("day", first, today(), None)

    assert rollups.rolled_up_coverage(stats.reporting_zone()).spans == ()
    assert stats.figures_grouped("day", first_day=first, last_day=today()) == expected

    rollups.roll_up_closed_days(limit=None)

    # Every closed day of New York is rolled up again in its zone (a Karachi day that is not
    # closed in New York yet stays as it was, unread, until it is).
    before = rollups.closed_before(stats.reporting_zone())
    zones = set(RolledUpDay.objects.filter(day__lt=before).values_list("zone", flat=True))
    assert zones == {"America/New_York"}
    assert stats.figures_grouped("day", first_day=first, last_day=today()) == expected


def test_the_beat_task_rolls_up_the_closed_days(history):
    from calls.tasks import roll_up_days

    roll_up_days.apply()

    assert len(rolled_up_days()) == DAYS_OF_DATA - 2


def test_beat_runs_the_rollup_every_5_minutes():
    from robodash.celery import app

    app.loader.import_default_modules()
    app.finalize()
    entries = {entry["task"]: entry for entry in app.conf.beat_schedule.values()}
    assert entries["calls.tasks.roll_up_days"]["schedule"] == 300


# --- Pages -----------------------------------------------------------------------------------


def _page_figures(client) -> dict[str, Any]:
    """What the three pages show, as the figures in their contexts."""
    overview = client.get(reverse("overview")).context
    reports = client.get(reverse("reports") + "?period=week").context
    reports_by_day = client.get(reverse("reports")).context
    campaigns = client.get(reverse("campaign_list")).context
    return {
        "overview periods": overview["periods"],
        "overview chart": [(bar.day, bar.figures) for bar in overview["chart"]["bars"]],
        "reports": [
            (table.group, [(row.label, row.figures) for row in table.rows], table.total)
            for context in (reports, reports_by_day)
            for table in context["tables"]
        ],
        "campaigns": [(c.pk, figures) for c, figures in campaigns["rows"]],
    }


def test_pages_show_the_same_numbers_whether_or_not_the_rollup_ran(client, admin_user, history):
    client.force_login(admin_user)
    live = _page_figures(client)

    rollups.roll_up_closed_days()

    assert DailyFigures.objects.exists()
    assert _page_figures(client) == live
    month = dict(live["overview periods"])["Last 30 days"]
    assert month.calls == Call.objects.count()
    assert month.charges == sum(
        (c.call_charges for c in Call.objects.filter(~Q(call_charges=None))), Decimal("0.00")
    )


def _queries_for(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_with_rollups_the_pages_run_as_many_queries_for_many_days_as_for_few(
    client, admin_user, store
):
    campaign = Campaign.objects.create(store=store, name="Queries")
    add_calls(campaign, 3, outcome=Outcome.CONFIRMED, created_at=days_ago(3))
    add_calls(campaign, 3, outcome=Outcome.CONFIRMED, created_at=days_ago(0))
    rollups.roll_up_closed_days()
    client.force_login(admin_user)
    pages = [reverse("overview"), reverse("reports"), reverse("campaign_list")]
    with_few = [_queries_for(client, url) for url in pages]

    for n in range(4, 29, 2):
        other = Campaign.objects.create(store=store, name=f"Day {n}")
        add_calls(other, 10, outcome=Outcome.NO_INPUT, created_at=days_ago(n), voice_id=100 + n)
    rollups.roll_up_closed_days()
    with_many = [_queries_for(client, url) for url in pages]

    assert with_many == with_few
