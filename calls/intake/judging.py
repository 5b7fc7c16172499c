"""The store's rules applied to new orders (calls/rules.py): each phone's history at the store
read for a whole batch in one query, then each order judged.

Every intake path calls `judge_new_orders` after it has its validated orders and before it
queues a call: the single-order form, a shop's order and the API (calls/intake/single.py) with a
batch of one, an upload's launch and import_calls (calls/intake/bulk.py) a batch at a time.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection

from calls.models import BlockedPhone, Order, Store
from calls.rules import NO_HISTORY, OrderFacts, PhoneHistory, StoreRules, Verdict, judge


def phone_histories(
    store: Store, phones: Iterable[str], *, read_orders: bool = True
) -> dict[str, PhoneHistory]:
    """Each of `phones` that has a past at `store` (a delivered or returned order, a block):
    its PhoneHistory, in one query. Only this store's orders count. `read_orders` False reads
    the block list alone (no rule reads the orders).

    The batch's phones go in as one array, so the orders are found by one bitmap scan of
    order_phone_idx for the whole batch (and counted by reading them: a phone has few orders),
    not a probe per phone: a per-phone plan that also ANDs in the store's own index, which
    statistics taken before a big import make look small, re-reads the store's orders once for
    every phone and makes an import quadratic."""
    wanted = sorted(set(phones))
    if not wanted:
        return {}
    quote = connection.ops.quote_name
    order_table, blocked_table = quote(Order._meta.db_table), quote(BlockedPhone._meta.db_table)
    delivered, returned = Order.Delivery.DELIVERED.value, Order.Delivery.RETURNED.value
    counted = (
        f"""SELECT o.phone,
                   count(*) FILTER (WHERE o.delivery = '{delivered}') AS delivered,
                   count(*) FILTER (WHERE o.delivery = '{returned}') AS returned
            FROM {order_table} o
            WHERE o.store_id = %(store)s AND o.phone = ANY(%(phones)s::varchar[])
            GROUP BY o.phone"""
        if read_orders
        else "SELECT NULL::varchar AS phone, 0 AS delivered, 0 AS returned WHERE false"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"""WITH h AS ({counted}),
                b AS (
                    SELECT phone, reason FROM {blocked_table}
                    WHERE store_id = %(store)s AND phone = ANY(%(phones)s::varchar[])
                )
            SELECT coalesce(h.phone, b.phone), coalesce(h.delivered, 0),
                   coalesce(h.returned, 0), b.phone IS NOT NULL, b.reason
            FROM h FULL JOIN b ON b.phone = h.phone
            WHERE h.delivered > 0 OR h.returned > 0 OR b.phone IS NOT NULL""",
            {"phones": wanted, "store": store.pk},
        )
        return {
            phone: PhoneHistory(delivered, returned, blocked, reason or "")
            for phone, delivered, returned, blocked, reason in cursor.fetchall()
        }


def judge_new_orders(store: Store, orders: list[OrderFacts]) -> list[Verdict]:
    """The verdict of each of `orders` (new orders of `store`), in their order: one query for
    the batch, whatever its size."""
    rules = StoreRules.of(store)
    histories = phone_histories(
        store, (order.phone for order in orders), read_orders=rules.read_order_history
    )
    return [judge(order, rules, histories.get(order.phone, NO_HISTORY)) for order in orders]
