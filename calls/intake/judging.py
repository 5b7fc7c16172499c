"""The store's rules applied to new orders (calls/rules.py): each phone's history at the store
read for a whole batch in one query, then each order judged.

The same query finds each phone's open order: its latest undecided one (no decision, not withdrawn
or rejected) that came within OPEN_ORDER_WINDOW. A new order from that phone is linked to it as a
possible duplicate (Order.duplicate_of), and so is a batch's order to an earlier one of the same
batch with its phone; the link is shown on both orders' pages and changes nothing else.

Every intake path calls `judge_new_orders` after it has its validated orders and before it
queues a call: the single-order form, a shop's order and the API (calls/intake/single.py) with a
batch of one, an upload's launch and import_calls (calls/intake/bulk.py) a batch at a time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection
from django.utils import timezone

from calls.models import BlockedPhone, Order, Store
from calls.rules import NO_HISTORY, OrderFacts, PhoneHistory, StoreRules, Verdict, judge

# How recent a phone's undecided order must be for a new one to be its possible duplicate.
OPEN_ORDER_WINDOW = dt.timedelta(hours=24)
# Orders of these statuses are over without a decision: not open, so nothing to duplicate.
_CLOSED = (Order.Status.WITHDRAWN.value, Order.Status.REJECTED.value)


@dataclass(frozen=True)
class Judged:
    """A new order's verdict, and the order it may duplicate: `duplicate_of`, the pk of the
    phone's open order stored before, or `repeats`, the index of an earlier order of the same
    batch with the phone (its id is the caller's to give)."""

    verdict: Verdict
    duplicate_of: int | None = None
    repeats: int | None = None


def phone_histories(
    store: Store, phones: Iterable[str], *, now: dt.datetime | None = None
) -> dict[str, PhoneHistory]:
    """Each of `phones` that has a past at `store` (a delivered or returned order, a block, an
    open order since OPEN_ORDER_WINDOW before `now`): its PhoneHistory, in one query. Only this
    store's orders count.

    The batch's phones go in as one array, so the orders are found by one bitmap scan of
    order_phone_idx for the whole batch (and counted by reading them: a phone has few orders),
    not a probe per phone: a per-phone plan that also ANDs in the store's own index, which
    statistics taken before a big import make look small, re-reads the store's orders once for
    every phone and makes an import quadratic."""
    wanted = sorted(set(phones))
    if not wanted:
        return {}
    since = (now or timezone.now()) - OPEN_ORDER_WINDOW
    quote = connection.ops.quote_name
    order_table, blocked_table = quote(Order._meta.db_table), quote(BlockedPhone._meta.db_table)
    delivered, returned = Order.Delivery.DELIVERED.value, Order.Delivery.RETURNED.value
    with connection.cursor() as cursor:
        cursor.execute(
            f"""WITH h AS (
                    SELECT o.phone,
                           count(*) FILTER (WHERE o.delivery = '{delivered}') AS delivered,
                           count(*) FILTER (WHERE o.delivery = '{returned}') AS returned,
                           (array_agg(o.id ORDER BY o.created_at DESC, o.id DESC) FILTER (
                               WHERE o.decision = '' AND o.status <> ALL(%(closed)s)
                                 AND o.created_at >= %(since)s
                           ))[1] AS open_order
                    FROM {order_table} o
                    WHERE o.store_id = %(store)s AND o.phone = ANY(%(phones)s::varchar[])
                    GROUP BY o.phone
                ),
                b AS (
                    SELECT phone, reason FROM {blocked_table}
                    WHERE store_id = %(store)s AND phone = ANY(%(phones)s::varchar[])
                )
            SELECT coalesce(h.phone, b.phone), coalesce(h.delivered, 0),
                   coalesce(h.returned, 0), b.phone IS NOT NULL, b.reason, h.open_order
            FROM h FULL JOIN b ON b.phone = h.phone
            WHERE h.delivered > 0 OR h.returned > 0 OR h.open_order IS NOT NULL
               OR b.phone IS NOT NULL""",
            {"phones": wanted, "store": store.pk, "since": since, "closed": list(_CLOSED)},
        )
        return {
            phone: PhoneHistory(delivered, returned, blocked, reason or "", open_order)
            for phone, delivered, returned, blocked, reason, open_order in cursor.fetchall()
        }


def judge_new_orders(
    store: Store, orders: list[OrderFacts], now: dt.datetime | None = None
) -> list[Judged]:
    """The verdict of each of `orders` (new orders of `store`), in their order, and the order
    each may duplicate: one query for the batch, whatever its size."""
    rules = StoreRules.of(store)
    histories = phone_histories(store, (order.phone for order in orders), now=now)
    judged = []
    latest: dict[str, int] = {}  # phone -> index of the batch's latest order with it
    for index, order in enumerate(orders):
        history = histories.get(order.phone, NO_HISTORY)
        repeats = latest.get(order.phone)
        judged.append(
            Judged(
                judge(order, rules, history),
                duplicate_of=history.open_order if repeats is None else None,
                repeats=repeats,
            )
        )
        latest[order.phone] = index
    return judged
