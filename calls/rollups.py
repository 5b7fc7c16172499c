"""Daily rollups: the figures of closed days, computed once, so pages add up days, not calls.

A call counts on the day (in the reporting zone) it was created, and its figures change only
until it is final. A day is therefore **closed**, its figures fixed for good, when it is before
yesterday and no call created that day is unfinished. The one way a final call changes again is
a late acceptance (dispatch._mark_sent: the provider accepted a send whose lease had already run
out, so the call went to needs_review and comes back to in progress); it happens within minutes,
so a day with a call sent to review in the last LATE_ACCEPTANCE_GRACE is not closed yet either.

`roll_up_closed_days` (beat, every 5 minutes; `manage.py roll_up_days`) writes each missing closed
day in one transaction: one INSERT ... SELECT ... GROUP BY campaign, voice id into DailyFigures,
built from the very aggregates the live pages use (stats.figure_aggregates), and the day's
RolledUpDay row. The readers (stats.figures_grouped) add up DailyFigures for the rolled-up days
that are closed and count the calls of every other day live, so a page is right whether or not
the rollup ran.

Closed is decided per day (`open_days`), not only below the oldest unfinished call
(`closed_before`): a few calls left queued in a paused or draft campaign keep their own days
live, not every day since.
"""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import Min, Q
from django.utils import timezone

from calls import stats
from calls.models import Call, DailyFigures, RolledUpDay

log = logging.getLogger(__name__)

# Longer than the lease-expiry-to-late-acceptance race takes (seconds, see the module doc).
LATE_ACCEPTANCE_GRACE = dt.timedelta(minutes=15)
# pg_try_advisory_xact_lock(ROLLUP_LOCK, day ordinal): one writer per day, the others skip it.
ROLLUP_LOCK = 0x524F4C4C  # "ROLL"
DEFAULT_DAYS_PER_RUN = 31

# The days (in the zone) that have an unfinished call, found by a loose index scan of the
# partial index call_unfinished_created_idx: one probe per such day, however many calls wait;
# and the days of calls sent to review within the grace (call_open_followup_idx).
_OPEN_DAYS_CTE = """
WITH RECURSIVE unfinished(day) AS (
  SELECT (min(created_at) AT TIME ZONE %(zone)s)::date FROM calls_call
  WHERE NOT (state = %(final)s)
  UNION ALL
  SELECT (SELECT (min(later.created_at) AT TIME ZONE %(zone)s)::date FROM calls_call later
          WHERE NOT (later.state = %(final)s)
            AND later.created_at >= ((unfinished.day + 1)::timestamp AT TIME ZONE %(zone)s))
  FROM unfinished WHERE unfinished.day IS NOT NULL
), open_days(day) AS (
  SELECT day FROM unfinished WHERE day IS NOT NULL
  UNION
  SELECT (created_at AT TIME ZONE %(zone)s)::date FROM calls_call
  WHERE outcome = %(needs_review)s AND handled_at IS NULL AND finalized_at >= %(grace_start)s
)
"""

# The rolled-up days that are closed, as runs of consecutive days (gaps and islands).
_COVERAGE_SQL = f"""
{_OPEN_DAYS_CTE}
SELECT min(day), max(day) FROM (
  SELECT day, day - (row_number() OVER (ORDER BY day))::int AS island
  FROM calls_rolledupday
  WHERE zone = %(zone)s AND day < %(yesterday)s
    AND day NOT IN (SELECT day FROM open_days)
    AND day >= %(first_day)s AND day <= %(last_day)s
) AS rolled
GROUP BY island
ORDER BY 1
"""


def _open_days_params(zone: zoneinfo.ZoneInfo) -> dict[str, Any]:
    now = timezone.now()
    return {
        "yesterday": now.astimezone(zone).date() - dt.timedelta(days=1),
        "zone": zone.key,
        "final": Call.State.FINAL.value,
        "needs_review": Call.Outcome.NEEDS_REVIEW.value,
        "grace_start": now - LATE_ACCEPTANCE_GRACE,
    }


def open_days(zone: zoneinfo.ZoneInfo) -> set[dt.date]:
    """The days (in `zone`) not closed although they may be before yesterday: an unfinished
    call was created on them, or a call sent to review within LATE_ACCEPTANCE_GRACE."""
    with connection.cursor() as cursor:
        cursor.execute(f"{_OPEN_DAYS_CTE} SELECT day FROM open_days", _open_days_params(zone))
        return {day for (day,) in cursor.fetchall()}


def closed_before(zone: zoneinfo.ZoneInfo) -> dt.date:
    """The first day (in `zone`) that is not closed: yesterday, or the oldest open day. Every
    day before it is closed; later days before yesterday may be closed too (see open_days)."""
    yesterday = stats.today_in(zone) - dt.timedelta(days=1)
    return min([yesterday, *open_days(zone)])


@dataclass(frozen=True)
class Coverage:
    """Which days of a range the readers take from DailyFigures: runs of consecutive days."""

    spans: tuple[tuple[dt.date, dt.date], ...]

    def rolled_up_days(self) -> Q:
        """DailyFigures of the covered days."""
        return _any_of(Q(day__range=span) for span in self.spans)

    def live_days(
        self, first_day: dt.date | None, last_day: dt.date | None, zone: zoneinfo.ZoneInfo
    ) -> Q:
        """Calls created on the days from `first_day` to `last_day` (None: unbounded) that are
        not covered, as ranges of created_at, so that the created_at indexes serve them."""
        ranges: list[tuple[dt.date | None, dt.date | None]] = []
        start = first_day
        for span_first, span_last in self.spans:
            if start is None or start < span_first:
                ranges.append((start, span_first - dt.timedelta(days=1)))
            start = span_last + dt.timedelta(days=1)
        if start is None or last_day is None or start <= last_day:
            ranges.append((start, last_day))
        return _any_of(_created_on(first, last, zone) for first, last in ranges)


def _any_of(conditions: Iterator[Q]) -> Q:
    combined: Q | None = None
    for condition in conditions:
        if not condition:  # an unbounded range: every row (Q() would vanish from an OR)
            return Q()
        combined = condition if combined is None else combined | condition
    # No condition matches nothing: Django then skips the query and returns no rows.
    return combined if combined is not None else Q(pk__in=[])


def _created_on(first: dt.date | None, last: dt.date | None, zone: zoneinfo.ZoneInfo) -> Q:
    condition = Q()
    if first is not None:
        condition &= Q(created_at__gte=stats.local_day_start(first, zone))
    if last is not None:
        condition &= Q(created_at__lt=stats.local_day_start(last + dt.timedelta(days=1), zone))
    return condition


def rolled_up_coverage(
    zone: zoneinfo.ZoneInfo, first_day: dt.date | None = None, last_day: dt.date | None = None
) -> Coverage:
    """The rolled-up closed days from `first_day` to `last_day` (None: unbounded), one query."""
    params = {
        **_open_days_params(zone),
        "first_day": first_day or dt.date.min,
        "last_day": last_day or dt.date.max,
    }
    with connection.cursor() as cursor:
        cursor.execute(_COVERAGE_SQL, params)
        spans = tuple((first, last) for first, last in cursor.fetchall())
    return Coverage(spans)


# --- Writing ---------------------------------------------------------------------------------


def _days(first: dt.date, before: dt.date) -> Iterator[dt.date]:
    day = first
    while day < before:
        yield day
        day += dt.timedelta(days=1)


def roll_up_closed_days(limit: int | None = DEFAULT_DAYS_PER_RUN) -> int:
    """Write the closed days not rolled up yet (in the current reporting zone), oldest first,
    at most `limit` of them (None: all). Returns how many days this run wrote.

    Days rolled up in another zone (the setting changed) are written again; rolled-up days that
    are open again (a call on them was reopened) are dropped until they close again.
    """
    zone = stats.reporting_zone()
    yesterday = stats.today_in(zone) - dt.timedelta(days=1)
    still_open = open_days(zone)
    oldest = Call.objects.aggregate(first=Min("created_at"))["first"]  # call_created_idx
    rolled = dict(RolledUpDay.objects.values_list("day", "zone"))
    for day in sorted(still_open):
        if rolled.get(day) == zone.key:
            _drop_day(day)
    if oldest is None:
        return 0
    missing = [
        day
        for day in _days(oldest.astimezone(zone).date(), yesterday)
        if day not in still_open and rolled.get(day) != zone.key
    ]
    written = 0
    for day in missing[:limit] if limit is not None else missing:
        written += roll_up_day(day, zone)
    return written


def try_lock_day(day: dt.date) -> bool:
    """Take the day's lock until the transaction ends; False when another run holds it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [ROLLUP_LOCK, day.toordinal()])
        (locked,) = cursor.fetchone()
    return bool(locked)


def _drop_day(day: dt.date) -> None:
    with transaction.atomic():
        if not try_lock_day(day):
            return
        DailyFigures.objects.filter(day=day).delete()
        RolledUpDay.objects.filter(day=day).delete()
    log.warning("rollup: %s is no longer closed; its figures are counted live again", day)


def reopen_day(created_at: dt.datetime) -> None:
    """A final call created at `created_at` has just changed (a decision by hand): drop its
    day's rollup, in the caller's transaction, so the pages count the day live until the next
    run rolls it up again. Waits for a run rolling that day up right now (it holds the day's
    lock), so its figures cannot land after this."""
    day = created_at.astimezone(stats.reporting_zone()).date()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [ROLLUP_LOCK, day.toordinal()])
    DailyFigures.objects.filter(day=day).delete()
    RolledUpDay.objects.filter(day=day).delete()


def roll_up_day(day: dt.date, zone: zoneinfo.ZoneInfo) -> int:
    """One closed day's figures and its RolledUpDay, in one transaction. Returns 1, or 0 when
    another run has the day or it turns out not to be closed."""
    with transaction.atomic():
        if not try_lock_day(day):
            return 0
        # Under the lock: a run that held it before has committed, so this read sees its work.
        existing = RolledUpDay.objects.filter(day=day).first()
        if existing is not None and existing.zone == zone.key:
            return 0
        if existing is not None:  # rolled up in another zone: its midnights were elsewhere
            DailyFigures.objects.filter(day=day).delete()
            existing.delete()
        RolledUpDay.objects.create(day=day, zone=zone.key, computed_at=timezone.now())
        _insert_day_figures(day, zone)
        if not _all_final(day):
            # A call of the day was reopened after open_days looked: the day is not
            # closed after all. Write nothing; a later run rolls it up once it closes.
            transaction.set_rollback(True)
            return 0
    return 1


def _all_final(day: dt.date) -> bool:
    """Whether the figures just written for `day` are of final calls only, as the snapshot
    the INSERT read saw them: what is stored is then fixed for good."""
    return not DailyFigures.objects.filter(day=day).exclude(queued=0, in_flight=0).exists()


def _insert_day_figures(day: dt.date, zone: zoneinfo.ZoneInfo) -> None:
    """INSERT ... SELECT of the live query's own GROUP BY, for one day: the same numbers."""
    groups = (
        stats.created_between(Call.objects.all(), day, day, zone)
        .order_by()
        .values("campaign_id", "voice_id", "store_id")
        .annotate(**stats.figure_aggregates())
    )
    select_sql, select_params = groups.query.sql_with_params()
    quote = connection.ops.quote_name
    columns = ", ".join(
        quote(name) for name in ["campaign_id", "voice_id", "store_id", *stats.FIGURE_FIELDS]
    )
    sql = (
        f"INSERT INTO {quote(DailyFigures._meta.db_table)} ({quote('day')}, {columns}) "
        f"SELECT %s, {columns} FROM ({select_sql}) AS day_groups"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [day, *select_params])
