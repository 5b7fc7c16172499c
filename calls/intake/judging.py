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
    its PhoneHistory, in one query (an array parameter, the phone index per phone). Only this
    store's orders count. `read_orders` False reads the block list alone (no rule reads the
    orders)."""
    wanted = sorted(set(phones))
    if not wanted:
        return {}
    quote = connection.ops.quote_name
    order_table, blocked_table = quote(Order._meta.db_table), quote(BlockedPhone._meta.db_table)
    delivered, returned = Order.Delivery.DELIVERED.value, Order.Delivery.RETURNED.value
    counts = (
        f"""LEFT JOIN LATERAL (
            SELECT count(*) FILTER (WHERE o.delivery = '{delivered}') AS delivered,
                   count(*) FILTER (WHERE o.delivery = '{returned}') AS returned
            FROM {order_table} o
            WHERE o.store_id = %(store)s AND o.phone = p.phone
              AND o.delivery IN ('{delivered}', '{returned}')
        ) h ON true"""
        if read_orders
        else "CROSS JOIN (SELECT 0 AS delivered, 0 AS returned) h"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT p.phone, h.delivered, h.returned, b.id IS NOT NULL, b.reason
            FROM unnest(%(phones)s::varchar[]) AS p(phone)
            {counts}
            LEFT JOIN {blocked_table} b ON b.store_id = %(store)s AND b.phone = p.phone
            WHERE h.delivered > 0 OR h.returned > 0 OR b.id IS NOT NULL""",
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
