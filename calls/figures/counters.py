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
from calls.models import Call, Order
from calls.transitions import BATCH_COUNTING, BATCH_COUNTING_SETTING

log = logging.getLogger(__name__)


def contribution_sql(row: str) -> dict[str, str]:
    """What one call (a row named `row`) adds to each column of its group, as SQL: the same
    definitions as stats.figure_aggregates (tests/calls/test_counters.py checks they agree).
    A notice call counts in the notice columns alone; a call adds nothing to the orders'."""
    state, outcome, hand = f"{row}.state", f"{row}.outcome", f"{row}.hand_decision"
    answered = ", ".join(f"'{o.value}'" for o in stats.ANSWERED_OUTCOMES)
    in_flight = ", ".join(f"'{s.value}'" for s in stats.IN_FLIGHT_STATES)
    confirmed, cancelled = Call.Outcome.CONFIRMED.value, Call.Outcome.CANCELLED.value
    verify = f"({row}.purpose = '{Call.Purpose.VERIFY.value}')"
    notice = f"({row}.purpose = '{Call.Purpose.NOTICE.value}')"
    counts = {
        "calls": "TRUE",
        "placed": f"{row}.sent_at IS NOT NULL",
        "queued": f"{state} = '{Call.State.QUEUED.value}'",
        "in_flight": f"{state} IN ({in_flight})",
        "finished": f"{state} = '{Call.State.FINAL.value}'",
    }
    for value in Call.Outcome.values:
        counts[value] = f"{outcome} = '{value}'"
    by_key = f"{hand} = '' AND {outcome} ="
    counts |= {
        "decided_confirmed": f"{hand} = '{confirmed}' OR ({by_key} '{confirmed}')",
        "decided_cancelled": f"{hand} = '{cancelled}' OR ({by_key} '{cancelled}')",
        "decided_by_hand": f"{hand} <> ''",
        "decided_unanswered": f"{hand} <> '' AND {outcome} NOT IN ({answered})",
    }
    charges = f"COALESCE({row}.call_charges, 0)"
    columns = {name: f"({verify} AND ({sql}))::int" for name, sql in counts.items()}
    columns |= {
        "charges": f"CASE WHEN {verify} THEN {charges} ELSE 0 END",
        "notice_calls": f"{notice}::int",
        "notice_charges": f"CASE WHEN {notice} THEN {charges} ELSE 0 END",
    }
    columns |= {name: "0" for name in stats.ORDER_FIGURE_FIELDS}
    assert list(columns) == stats.FIGURE_FIELDS, "a figure without its SQL, or out of order"
    return columns


def order_contribution_sql(row: str) -> dict[str, str]:
    """What one order (a row named `row`) adds to each column of its group, as SQL: the same
    definitions as stats.order_figure_aggregates. An order adds nothing to the calls' columns."""
    delivery, decision = f"{row}.delivery", f"{row}.decision"
    delivered = f"{delivery} = '{Order.Delivery.DELIVERED.value}'"
    returned = f"{delivery} = '{Order.Delivery.RETURNED.value}'"
    confirmed = f"{decision} = '{Order.Decision.CONFIRMED.value}'"
    undecided_called = f"{decision} = '' AND {row}.called"
    not_called = f"{decision} = '' AND NOT {row}.called"
    cancelled_unshipped = f"{decision} = '{Order.Decision.CANCELLED.value}' AND {delivery} = ''"
    counts = {
        "shipped": f"{delivery} <> ''",
        "delivered": delivered,
        "returned": returned,
        "delivered_confirmed": f"{delivered} AND {confirmed}",
        "returned_confirmed": f"{returned} AND {confirmed}",
        "delivered_undecided": f"{delivered} AND {undecided_called}",
        "returned_undecided": f"{returned} AND {undecided_called}",
        "delivered_not_called": f"{delivered} AND {not_called}",
        "returned_not_called": f"{returned} AND {not_called}",
        "cancelled_unshipped": cancelled_unshipped,
    }
    columns = {name: "0" for name in stats.CALL_FIGURE_FIELDS}
    columns |= {name: f"({sql})::int" for name, sql in counts.items()}
    columns["returns_avoided"] = (
        f"CASE WHEN {cancelled_unshipped} THEN "
        f"(SELECT s.return_cost FROM calls_store s WHERE s.id = {row}.store_id) ELSE 0 END"
    )
    assert list(columns) == stats.FIGURE_FIELDS, "a figure without its SQL, or out of order"
    return columns


# The columns whose change can change a figure: an UPDATE that changes none of them is skipped.
COUNTED_COLUMNS = (
    "created_at",
    "campaign_id",
    "voice_id",
    "store_id",
    "purpose",
    "state",
    "outcome",
    "hand_decision",
    "sent_at",
    "call_charges",
)
ORDER_COUNTED_COLUMNS = (
    "created_at",
    "campaign_id",
    "voice_id",
    "store_id",
    "delivery",
    "decision",
    "called",
)
# An order counts in no column unless one of these holds (its trigger fires only then).
ORDER_COUNTS_SQL = (
    f"{{row}}.delivery <> '' OR {{row}}.decision = '{Order.Decision.CANCELLED.value}'"
)


def _keys(row: str) -> str:
    day = f"(({row}.created_at AT TIME ZONE zone)::date)"
    return f"{day} AS day, {row}.campaign_id, {row}.voice_id, {row}.store_id"


def _signed(contributions: dict[str, str], sign: str) -> str:
    return ", ".join(f"{sign}{sql} AS {name}" for name, sql in contributions.items())


def _upsert(select: str, *, skip_zero: bool) -> str:
    """Add the rows of `select` (a group's keys and a value per figure) to their groups."""
    fields = stats.FIGURE_FIELDS
    sums = ", ".join(f"sum({name})" for name in fields)
    nonzero = " OR ".join(f"sum({name}) <> 0" for name in fields)
    added = ", ".join(f"{name} = f.{name} + EXCLUDED.{name}" for name in fields)
    columns = ", ".join(fields)
    return f"""INSERT INTO calls_dailyfigures AS f (day, campaign_id, voice_id, store_id, {columns})
    SELECT day, campaign_id, voice_id, store_id, {sums}
    FROM ({select}) AS d
    GROUP BY day, campaign_id, voice_id, store_id
    {f"HAVING {nonzero}" if skip_zero else ""}
    ORDER BY day, campaign_id, voice_id
    ON CONFLICT (day, campaign_id, voice_id) DO UPDATE SET {added};"""


def _subtract(select: str) -> str:
    """Take the rows of `select` from the groups still there. Calls and orders go only with
    their campaign (a cascade), whose rows go too: never insert a row for a campaign being
    deleted."""
    fields = stats.FIGURE_FIELDS
    taken = ", ".join(f"{n} = f.{n} - d.{n}" for n in fields)
    return f"""UPDATE calls_dailyfigures AS f SET {taken}
    FROM (
      SELECT day, campaign_id, voice_id, {", ".join(f"sum({n}) AS {n}" for n in fields)}
      FROM ({select}) AS g
      GROUP BY day, campaign_id, voice_id
    ) AS d
    WHERE f.day = d.day AND f.campaign_id = d.campaign_id AND f.voice_id = d.voice_id;"""


def trigger_function_sql() -> str:
    """The calls' trigger function, as the migrations install it (tests compare the installed
    one): a statement's calls, from its transition tables."""
    counted = contribution_sql
    changed = " OR ".join(f"o.{c} IS DISTINCT FROM n.{c}" for c in COUNTED_COLUMNS)
    return f"""
CREATE OR REPLACE FUNCTION calls_count_figures() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  zone text;
BEGIN
  zone := calls_figures_zone();
  IF TG_OP = 'INSERT' THEN
    {_upsert(f"SELECT {_keys('n')}, {_signed(counted('n'), '')} FROM new_calls n", skip_zero=False)}
  ELSIF TG_OP = 'UPDATE' THEN
    {
        _upsert(
            f"SELECT {_keys('n')}, {_signed(counted('n'), '')} "
            f"FROM new_calls n JOIN old_calls o ON o.id = n.id WHERE {changed} "
            f"UNION ALL SELECT {_keys('o')}, {_signed(counted('o'), '-')} "
            f"FROM new_calls n JOIN old_calls o ON o.id = n.id WHERE {changed}",
            skip_zero=True,
        )
    }
  ELSE
    {_subtract(f"SELECT {_keys('o')}, {_signed(counted('o'), '')} FROM old_calls o")}
  END IF;
  RETURN NULL;
END
$$;
"""


def order_trigger_function_sql() -> str:
    """The orders' trigger function, as the migrations install it: one row at a time, and its
    triggers fire only for an order that counts or a change of a counted column (their WHEN:
    `order_triggers_sql`), so the writes of an order's status with every call cost nothing."""
    counted = order_contribution_sql
    return f"""
CREATE OR REPLACE FUNCTION calls_count_order_figures() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  zone text;
BEGIN
  zone := calls_figures_zone();
  IF TG_OP = 'INSERT' THEN
    {
        _upsert(
            f"SELECT {_keys('n')}, {_signed(counted('n'), '')} FROM (SELECT NEW.*) n",
            skip_zero=True,
        )
    }
  ELSIF TG_OP = 'UPDATE' THEN
    {
        _upsert(
            f"SELECT {_keys('n')}, {_signed(counted('n'), '')} FROM (SELECT NEW.*) n "
            f"UNION ALL SELECT {_keys('o')}, {_signed(counted('o'), '-')} FROM (SELECT OLD.*) o",
            skip_zero=True,
        )
    }
  ELSE
    {_subtract(f"SELECT {_keys('o')}, {_signed(counted('o'), '')} FROM (SELECT OLD.*) o")}
  END IF;
  RETURN NULL;
END
$$;
"""


def order_triggers_sql() -> list[str]:
    """The orders' triggers, with the WHEN that skips every write that changes no figure (and
    the update of a batch counted by calls_count_orders)."""
    changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in ORDER_COUNTED_COLUMNS)
    counts = ORDER_COUNTS_SQL
    run = "EXECUTE FUNCTION calls_count_order_figures()"
    by_row = (
        f"current_setting('{BATCH_COUNTING_SETTING}', true) IS DISTINCT FROM '{BATCH_COUNTING}'"
    )
    return [
        "CREATE TRIGGER calls_order_count_insert AFTER INSERT ON calls_order FOR EACH ROW "
        f"WHEN ({counts.format(row='NEW')}) {run}",
        "CREATE TRIGGER calls_order_count_update AFTER UPDATE ON calls_order FOR EACH ROW "
        f"WHEN (({counts.format(row='OLD')} OR {counts.format(row='NEW')}) AND ({changed}) "
        f"AND {by_row}) {run}",
        "CREATE TRIGGER calls_order_count_delete AFTER DELETE ON calls_order FOR EACH ROW "
        f"WHEN ({counts.format(row='OLD')}) {run}",
    ]


def order_batch_function_sql() -> str:
    """calls_count_orders(order_ids, direction): the orders `order_ids` as they are now, counted
    into their groups (direction 1) or out of them (-1), in one statement: how a writer of many
    orders at once counts them (calls/transitions.py BATCH_COUNTING_SETTING), where the update
    trigger would run a plpgsql upsert per order (half a millisecond each: a minute for a
    courier's sheet of 100,000 parcels)."""
    counted = ", ".join(
        f"direction * ({sql}) AS {name}" for name, sql in order_contribution_sql("n").items()
    )
    rows = (
        f"SELECT {_keys('n')}, {counted} FROM calls_order n "
        f"WHERE n.id = ANY(order_ids) AND ({ORDER_COUNTS_SQL.format(row='n')})"
    )
    return f"""
CREATE OR REPLACE FUNCTION calls_count_orders(order_ids bigint[], direction integer)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  zone text;
BEGIN
  zone := calls_figures_zone();
  {_upsert(rows, skip_zero=True)}
END
$$;
"""


def return_cost_function_sql() -> str:
    """A store's new return cost, applied at once to its returns avoided (kept as money so the
    pages add up rows, never join the stores)."""
    return """
CREATE OR REPLACE FUNCTION calls_reprice_returns_avoided() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE calls_dailyfigures SET returns_avoided = cancelled_unshipped * NEW.return_cost
  WHERE store_id = NEW.id AND (cancelled_unshipped <> 0 OR returns_avoided <> 0);
  RETURN NULL;
END
$$;
"""


RETURN_COST_TRIGGER_SQL = (
    "CREATE TRIGGER calls_store_reprice_returns AFTER UPDATE OF return_cost ON calls_store "
    "FOR EACH ROW WHEN (OLD.return_cost IS DISTINCT FROM NEW.return_cost) "
    "EXECUTE FUNCTION calls_reprice_returns_avoided()"
)


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
    """Every group of every call and order, counted directly: the rebuild's INSERT and the
    check's truth."""
    sums = ", ".join(f"sum({name}) AS {name}" for name in stats.FIGURE_FIELDS)
    day = "(({row}.created_at AT TIME ZONE %(zone)s)::date) AS day"
    keys = "{row}.campaign_id, {row}.voice_id, {row}.store_id"
    calls = ", ".join(f"{sql} AS {name}" for name, sql in contribution_sql("c").items())
    orders = ", ".join(f"{sql} AS {name}" for name, sql in order_contribution_sql("o").items())
    return f"""
      SELECT day, campaign_id, voice_id, store_id, {sums}
      FROM (SELECT {day.format(row="c")}, {keys.format(row="c")}, {calls} FROM calls_call c
            UNION ALL
            SELECT {day.format(row="o")}, {keys.format(row="o")}, {orders} FROM calls_order o
            WHERE {ORDER_COUNTS_SQL.format(row="o")}) AS d
      GROUP BY day, campaign_id, voice_id, store_id
    """


def rebuild(zone: zoneinfo.ZoneInfo | None = None) -> int:
    """Count every call again, in `zone` (default: the reporting zone), and count in it from
    now on. Writers of calls wait meanwhile (SHARE lock); readers do not. Returns the rows."""
    zone = zone or stats.reporting_zone()
    columns = ", ".join(stats.FIGURE_FIELDS)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("LOCK TABLE calls_call, calls_order IN SHARE MODE")
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
