"""What a store's rules (calls/rules.py) would have done to its last 30 days of orders, before
they are saved: how many orders each rule would have matched, how many the rules together would
have skipped or held, and of those how many parcels were later delivered or returned.

Each past order is judged as intake would have judged it when it arrived: by its phone's history
at the store as it stood then. A parcel counts from the moment robodash learnt its end
(`delivery_learnt_at`), so a customer's tenth delivery does not make their first order trusted.
Two things are taken as they are now: the block list (a phone blocked today counts as blocked
for every order of the window), and a parcel's end, of which robodash keeps the latest only (a
parcel delivered and later returned counts as returned from when the return was learnt, and
never as delivered).

One SQL query, whatever the number of orders. The window's orders come from a covering index
(order_rule_window_idx); when a rule reads the history, the learnt ends of the window's phones
come from another (order_phone_end_idx) already in (phone, delivered or returned, learnt) order,
gathered into two sorted arrays per phone, in which `width_bucket` counts by binary search the
ends learnt at or before each order arrived: one pass over the store's ends merged with the
window's phones, no probe per order.
Each rule is one entry of RULE_CLAUSES: its code (as in Order.verdict_reasons), its verdict and
its condition on a judged order, counted with FILTER.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from calls.models import BlockedPhone, Order, Store

WINDOW = dt.timedelta(days=30)
PREVIEW_WORK_MEM = "64MB"  # a million orders' phones and their ends' arrays: about 50 MB

HOLD, SKIP = Order.Verdict.HOLD.value, Order.Verdict.SKIP.value
DELIVERED, RETURNED = Order.Delivery.DELIVERED.value, Order.Delivery.RETURNED.value


@dataclass(frozen=True)
class RuleClause:
    """One rule as the preview counts it: `condition` is SQL on a judged row (its columns:
    amount, arrived, placed, delivered and returned before it arrived, blocked), true when the
    rule matches; `setting` is the Store field that turns it on (None: always on)."""

    rule: str  # the code intake stores in Order.verdict_reasons
    verdict: str  # Order.Verdict
    setting: str | None
    condition: str
    reads_history: bool = False


# In the order calls/rules.py judge() lists them. The stale rule is judged at intake by the
# stale-after setting: an order placed (the shop's time) more than that before it arrived; one
# with no placed time, or placed after it arrived (a shop's clock ahead), is never stale.
RULE_CLAUSES = (
    RuleClause("blocked", HOLD, None, "j.blocked"),
    RuleClause(
        "returns",
        HOLD,
        "hold_after_returns",
        "j.returned >= %(hold_after_returns)s",
        reads_history=True,
    ),
    RuleClause(
        "stale",
        HOLD,
        "stale_after_hours",
        "j.placed < j.arrived - make_interval(hours => %(stale_after_hours)s)",
    ),
    RuleClause("below_min", SKIP, "call_min_amount", "j.amount < %(call_min_amount)s"),
    RuleClause("above_max", SKIP, "call_max_amount", "j.amount > %(call_max_amount)s"),
    RuleClause(
        "trusted",
        SKIP,
        "trust_after",
        "j.delivered >= %(trust_after)s AND j.returned = 0",
        reads_history=True,
    ),
)


@dataclass(frozen=True)
class Tally:
    """Orders, and how many of their parcels were later delivered and returned (as known now)."""

    orders: int = 0
    delivered: int = 0
    returned: int = 0


@dataclass(frozen=True)
class RuleLine:
    rule: str
    verdict: str
    tally: Tally


@dataclass(frozen=True)
class RulePreview:
    since: dt.datetime
    until: dt.datetime
    orders: int  # the orders judged: the store's orders that arrived in the window
    lines: list[RuleLine]  # each rule that is on, in judging order: the orders it matched
    skipped: Tally  # the orders the rules together would have skipped (no rule held them)
    held: Tally  # ... and held
    # The skipped orders' returns at the store's cost of a returned parcel (None: no cost set).
    skipped_returns_cost: Decimal | None = None

    @property
    def called(self) -> int:
        return self.orders - self.skipped.orders - self.held.orders


PREVIEWED_SETTINGS = frozenset(c.setting for c in RULE_CLAUSES if c.setting)


def clauses_on(store: Store) -> list[RuleClause]:
    """The rules `store` has turned on (the block list always is)."""
    return [c for c in RULE_CLAUSES if c.setting is None or getattr(store, c.setting) is not None]


def _tally_columns(name: str, flag: str) -> str:
    return (
        f"count(*) FILTER (WHERE {flag}) AS {name}_orders, "
        f"count(*) FILTER (WHERE {flag} AND m.delivery = '{DELIVERED}') AS {name}_delivered, "
        f"count(*) FILTER (WHERE {flag} AND m.delivery = '{RETURNED}') AS {name}_returned"
    )


def _any(flags: list[str]) -> str:
    return "(" + " OR ".join(flags) + ")" if flags else "false"


def preview_sql(
    store: Store, *, since: dt.datetime, until: dt.datetime
) -> tuple[str, dict[str, Any]]:
    """The preview's query and its parameters (the bench EXPLAINs it)."""
    quote = connection.ops.quote_name
    orders, blocked = quote(Order._meta.db_table), quote(BlockedPhone._meta.db_table)
    clauses = clauses_on(store)
    params: dict[str, Any] = {"store": store.pk, "since": since, "until": until}
    params |= {c.setting: getattr(store, c.setting) for c in clauses if c.setting}
    # The window's orders as intake had them (an order rejected at intake was never judged).
    window = f"""(
                SELECT phone, amount, delivery, placed_at,
                       coalesce(arrived_at, created_at) AS arrived
                FROM {orders}
                WHERE store_id = %(store)s AND created_at >= %(since)s
                  AND created_at < %(until)s AND rejected_reason = ''
            )"""
    if any(c.reads_history for c in clauses):
        # Each judged phone's parcels' ends as robodash learnt them, oldest first, delivered and
        # returned apart: read in order_phone_end_idx's order (the subquery's ORDER BY, which
        # PostgreSQL keeps for the aggregate above it), so each array comes out sorted; then
        # width_bucket counts, by binary search, those learnt at or before the order arrived.
        # Only the phones of the window are gathered (merged with them in phone order): a
        # store's history is mostly customers who did not order again in the last 30 days.
        history = f"""
        ends AS (
            SELECT phone,
                   array_agg(learnt) FILTER (WHERE delivery = '{DELIVERED}') AS delivered,
                   array_agg(learnt) FILTER (WHERE delivery = '{RETURNED}') AS returned
            FROM (
                SELECT e.phone, e.delivery, e.delivery_learnt_at AS learnt
                FROM {orders} e
                WHERE e.store_id = %(store)s AND e.delivery IN ('{DELIVERED}', '{RETURNED}')
                  AND e.delivery_learnt_at < %(until)s
                  AND e.phone IN (SELECT w.phone FROM {window} w)
                ORDER BY e.phone, e.delivery, e.delivery_learnt_at
            ) learnt_ends
            GROUP BY phone
        ),"""
        with_history = """
            LEFT JOIN ends h ON h.phone = o.phone"""
        delivered = "coalesce(width_bucket(o.arrived, h.delivered), 0)"
        returned = "coalesce(width_bucket(o.arrived, h.returned), 0)"
    else:
        history = with_history = ""
        delivered = returned = "0"
    # Each rule's condition as a flag of its own (a condition on a missing value, NULL, does not
    # match), then counted; OFFSET 0 keeps each level computed once per order, not once for
    # each FILTER that reads it.
    flags = ",\n                   ".join(
        f"coalesce({c.condition}, false) AS m_{c.rule}" for c in clauses
    )
    holds = _any([f"m_{c.rule}" for c in clauses if c.verdict == HOLD])
    skips = _any([f"m_{c.rule}" for c in clauses if c.verdict == SKIP])
    tallies = [
        *(_tally_columns(c.rule, f"m_{c.rule}") for c in clauses),
        _tally_columns("held", holds),
        _tally_columns("skipped", f"NOT {holds} AND {skips}"),
    ]
    # Each order of the window with its phone's history when it arrived and whether the phone
    # is blocked now.
    sql = f"""
        WITH{history}
        judged AS (
            SELECT o.amount, o.delivery, o.placed_at AS placed, o.arrived,
                   {delivered} AS delivered, {returned} AS returned,
                   b.phone IS NOT NULL AS blocked
            FROM {window} o{with_history}
            LEFT JOIN {blocked} b ON b.store_id = %(store)s AND b.phone = o.phone
            OFFSET 0
        ),
        matched AS (
            SELECT j.delivery,
                   {flags}
            FROM judged j
            OFFSET 0
        )
        SELECT count(*) AS judged, {", ".join(tallies)}
        FROM matched m"""
    return sql, params


def preview(store: Store, *, now: dt.datetime | None = None) -> RulePreview:
    """What `store`'s rules (saved or not: the instance's values) would have done to its orders
    of the last 30 days."""
    until = now or timezone.now()
    since = until - WINDOW
    sql, params = preview_sql(store, since=since, until=until)
    with transaction.atomic(), connection.cursor() as cursor:
        # The phones' arrays are hashed in memory, not spilled to disk; and one process reads
        # the ends: a parallel plan would have each worker gather every phone's ends again.
        cursor.execute(f"SET LOCAL work_mem = '{PREVIEW_WORK_MEM}'")
        cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        cursor.execute(sql, params)
        row = cursor.fetchone()
        names = [column.name for column in cursor.description]
    values = dict(zip(names, row, strict=True))

    def tally(name: str) -> Tally:
        return Tally(
            values[f"{name}_orders"], values[f"{name}_delivered"], values[f"{name}_returned"]
        )

    return RulePreview(
        since=since,
        until=until,
        orders=values["judged"],
        lines=[RuleLine(c.rule, c.verdict, tally(c.rule)) for c in clauses_on(store)],
        skipped=tally("skipped"),
        held=tally("held"),
        skipped_returns_cost=(
            values["skipped_returned"] * store.return_cost if store.return_cost else None
        ),
    )
