"""The figures of every day, kept current by PostgreSQL as calls change: no page counts calls.

`DailyFigures` holds one row per (day, campaign, voice id): the columns of `stats.Figures` over
the calls created that day (in the reporting zone). Triggers on `calls_call` keep it exact:
after every INSERT, UPDATE or DELETE statement, one INSERT ... ON CONFLICT DO UPDATE adds what
the statement changed, computed from its transition tables (each changed call counted +1 as
it is now and -1 as it was). So:

- It happens in the writer's own transaction. A worker killed mid-transaction rolls the call
  and its figures back together; concurrent workers serialise on the row of the group they
  change (one row lock, taken in key order inside a statement), like any counter.
- No writer can forget it: transitions.py, the imports' COPY, an upload's launch, a late
  acceptance reopening a call, a decision by hand, the bench's raw SQL, a cascade delete.
  Nothing in Python has to remember to count. (The triggers themselves are created by
  migration 0013.)
- An UPDATE that changes no figure (a poll's next_poll_at, a claim by an agent) writes nothing
  and locks no counter row.

The pages read these rows only (calls/figures/stats.py), so a page costs the days and campaigns it
shows, not the calls stored: 10,000,000 calls cost what 1,000 do.

The zone. A day is a day of the reporting zone (ROBODASH_DEFAULT_STORE_TIMEZONE, read when a
process starts). The triggers read the zone the rows are counted in from the SQL function
`calls_figures_zone()` (a function, not a row: it is schema, so no data reset can leave the
triggers without a zone). When the setting changed, `manage.py migrate`, which every start runs
(make run, compose's web), counts everything again in the new zone (`recount_after_migrate`;
`manage.py figures --rebuild` by hand), with writers held off by a SHARE lock on the calls for
the seconds it takes. The readers never ask which zone: between a change and that migrate they
would show days split at the old zone's midnights, for as long as the start takes.

`mismatches()` compares the rows with a direct count of the calls in one snapshot; the test
suite runs it after every test, and `manage.py figures --check` runs it on a live database.
"""

from __future__ import annotations

import logging
import re
import zoneinfo
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, transaction

from calls.figures import stats
from calls.models import Call

log = logging.getLogger(__name__)


def contribution_sql(row: str) -> dict[str, str]:
    """What one call (a row named `row`) adds to each column of its group, as SQL: the same
    definitions as stats.figure_aggregates (tests/calls/test_counters.py checks they agree)."""
    state, outcome, hand = f"{row}.state", f"{row}.outcome", f"{row}.hand_decision"
    answered = ", ".join(f"'{o.value}'" for o in stats.ANSWERED_OUTCOMES)
    in_flight = ", ".join(f"'{s.value}'" for s in stats.IN_FLIGHT_STATES)
    confirmed, cancelled = Call.Outcome.CONFIRMED.value, Call.Outcome.CANCELLED.value
    columns = {
        "calls": "1",
        "placed": f"({row}.sent_at IS NOT NULL)::int",
        "queued": f"({state} = '{Call.State.QUEUED.value}')::int",
        "in_flight": f"({state} IN ({in_flight}))::int",
        "finished": f"({state} = '{Call.State.FINAL.value}')::int",
    }
    for value in Call.Outcome.values:
        columns[value] = f"({outcome} = '{value}')::int"
    columns |= {
        "decided_confirmed": (
            f"({hand} = '{confirmed}' OR ({hand} = '' AND {outcome} = '{confirmed}'))::int"
        ),
        "decided_cancelled": (
            f"({hand} = '{cancelled}' OR ({hand} = '' AND {outcome} = '{cancelled}'))::int"
        ),
        "decided_by_hand": f"({hand} <> '')::int",
        "decided_unanswered": f"({hand} <> '' AND {outcome} NOT IN ({answered}))::int",
        "charges": f"COALESCE({row}.call_charges, 0)",
    }
    assert list(columns) == stats.FIGURE_FIELDS, "a figure without its SQL, or out of order"
    return columns


# The columns whose change can change a figure: an UPDATE that changes none of them is skipped.
COUNTED_COLUMNS = (
    "created_at",
    "campaign_id",
    "voice_id",
    "store_id",
    "state",
    "outcome",
    "hand_decision",
    "sent_at",
    "call_charges",
)


def trigger_function_sql() -> str:
    """The trigger function, as the migrations install it (tests compare the installed one)."""
    fields = stats.FIGURE_FIELDS

    def signed(row: str, sign: str) -> str:
        return ", ".join(f"{sign}{sql} AS {name}" for name, sql in contribution_sql(row).items())

    def keys(row: str) -> str:
        day = f"(({row}.created_at AT TIME ZONE zone)::date)"
        return f"{day} AS day, {row}.campaign_id, {row}.voice_id, {row}.store_id"

    changed = " OR ".join(f"o.{c} IS DISTINCT FROM n.{c}" for c in COUNTED_COLUMNS)
    sums = ", ".join(f"sum({name})" for name in fields)
    columns = ", ".join(fields)
    added = ", ".join(f"{name} = f.{name} + EXCLUDED.{name}" for name in fields)
    nonzero = " OR ".join(f"sum({name}) <> 0" for name in fields)
    return f"""
CREATE OR REPLACE FUNCTION calls_count_figures() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  zone text;
BEGIN
  zone := calls_figures_zone();
  IF TG_OP = 'INSERT' THEN
    INSERT INTO calls_dailyfigures AS f (day, campaign_id, voice_id, store_id, {columns})
    SELECT day, campaign_id, voice_id, store_id, {sums}
    FROM (SELECT {keys("n")}, {signed("n", "")} FROM new_calls n) AS d
    GROUP BY day, campaign_id, voice_id, store_id
    ORDER BY day, campaign_id, voice_id
    ON CONFLICT (day, campaign_id, voice_id) DO UPDATE SET {added};
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO calls_dailyfigures AS f (day, campaign_id, voice_id, store_id, {columns})
    SELECT day, campaign_id, voice_id, store_id, {sums}
    FROM (
      SELECT {keys("n")}, {signed("n", "")}
      FROM new_calls n JOIN old_calls o ON o.id = n.id WHERE {changed}
      UNION ALL
      SELECT {keys("o")}, {signed("o", "-")}
      FROM new_calls n JOIN old_calls o ON o.id = n.id WHERE {changed}
    ) AS d
    GROUP BY day, campaign_id, voice_id, store_id
    HAVING {nonzero}
    ORDER BY day, campaign_id, voice_id
    ON CONFLICT (day, campaign_id, voice_id) DO UPDATE SET {added};
  ELSE
    -- Calls go only with their campaign (a cascade), whose rows go too: subtract from the
    -- rows still there, never insert one for a campaign being deleted.
    UPDATE calls_dailyfigures AS f SET {", ".join(f"{n} = f.{n} - d.{n}" for n in fields)}
    FROM (
      SELECT day, campaign_id, voice_id, {", ".join(f"sum({n}) AS {n}" for n in fields)}
      FROM (SELECT {keys("o")}, {signed("o", "")} FROM old_calls o) AS g
      GROUP BY day, campaign_id, voice_id
    ) AS d
    WHERE f.day = d.day AND f.campaign_id = d.campaign_id AND f.voice_id = d.voice_id;
  END IF;
  RETURN NULL;
END
$$;
"""


def zone_function_sql(zone: zoneinfo.ZoneInfo) -> str:
    """The definition of calls_figures_zone() for `zone` (a key zoneinfo found: letters,
    digits and _ + - / only, checked again here since it is spliced into SQL)."""
    if not re.fullmatch(r"[A-Za-z0-9_+\-/]+", zone.key):
        raise ValueError(f"not a time zone name: {zone.key!r}")
    return (
        "CREATE OR REPLACE FUNCTION calls_figures_zone() RETURNS text LANGUAGE sql STABLE "
        f"AS $$ SELECT '{zone.key}'::text $$"
    )


def _count_all_sql() -> str:
    """Every group of every call, counted directly: the rebuild's INSERT and the check's truth."""
    sums = ", ".join(f"sum({name}) AS {name}" for name in stats.FIGURE_FIELDS)
    contributions = ", ".join(f"{sql} AS {name}" for name, sql in contribution_sql("c").items())
    return f"""
      SELECT day, campaign_id, voice_id, store_id, {sums}
      FROM (SELECT ((c.created_at AT TIME ZONE %(zone)s)::date) AS day, c.campaign_id,
                   c.voice_id, c.store_id, {contributions}
            FROM calls_call c) AS d
      GROUP BY day, campaign_id, voice_id, store_id
    """


def rebuild(zone: zoneinfo.ZoneInfo | None = None) -> int:
    """Count every call again, in `zone` (default: the reporting zone), and count in it from
    now on. Writers of calls wait meanwhile (SHARE lock); readers do not. Returns the rows."""
    zone = zone or stats.reporting_zone()
    columns = ", ".join(stats.FIGURE_FIELDS)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("LOCK TABLE calls_call IN SHARE MODE")
        cursor.execute(zone_function_sql(zone))
        cursor.execute("DELETE FROM calls_dailyfigures")
        cursor.execute(
            f"INSERT INTO calls_dailyfigures (day, campaign_id, voice_id, store_id, {columns}) "
            + _count_all_sql(),
            {"zone": zone.key},
        )
        written = cursor.rowcount
    log.info("figures: counted every call again in %s (%d groups)", zone.key, written)
    return written


def rebuild_if_zone_changed() -> bool:
    """Rebuild when the reporting zone is not the one counted in."""
    zone = stats.reporting_zone()
    if stats.is_current(zone):
        return False
    counted = stats.counted_zone()
    rebuild(zone)
    log.warning("figures: the reporting zone changed from %s to %s: counted again", counted, zone)
    return True


def recount_after_migrate(using: str = DEFAULT_DB_ALIAS, **kwargs: Any) -> None:
    """post_migrate (calls/apps.py): every start migrates, so a changed zone is counted in from
    the first page on. Also sent after a test's flush: then one query, and nothing to do."""
    if using != DEFAULT_DB_ALIAS:
        return
    with connection.cursor() as cursor:
        # Absent while migrations before the figures' are applied (a test migrating back).
        cursor.execute("SELECT to_regprocedure('calls_figures_zone()') IS NOT NULL")
        (installed,) = cursor.fetchone()
    if installed:
        rebuild_if_zone_changed()


def mismatches(limit: int = 10) -> list[dict[str, Any]]:
    """Groups whose stored figures differ from a direct count of the calls, in one statement
    (one snapshot: right while workers write). Empty when every figure is exact."""
    zone = stats.counted_zone()
    fields = stats.FIGURE_FIELDS
    differs = " OR ".join(f"COALESCE(f.{n}, 0) IS DISTINCT FROM COALESCE(t.{n}, 0)" for n in fields)
    sql = f"""
      SELECT COALESCE(f.day, t.day), COALESCE(f.campaign_id, t.campaign_id),
             COALESCE(f.voice_id, t.voice_id),
             {", ".join(f"f.{n}" for n in fields)}, {", ".join(f"t.{n}" for n in fields)}
      FROM calls_dailyfigures f
      FULL OUTER JOIN ({_count_all_sql()}) AS t
        ON t.day = f.day AND t.campaign_id = f.campaign_id AND t.voice_id = f.voice_id
      WHERE {differs}
      LIMIT {int(limit)}
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, {"zone": zone})
        rows = cursor.fetchall()
    found = []
    for row in rows:
        stored = dict(zip(fields, row[3 : 3 + len(fields)], strict=True))
        counted = dict(zip(fields, row[3 + len(fields) :], strict=True))
        found.append(
            {
                "group": row[:3],
                "differ": {
                    n: (stored[n], counted[n])
                    for n in fields
                    if (stored[n] or 0) != (counted[n] or 0)
                },
            }
        )
    return found
