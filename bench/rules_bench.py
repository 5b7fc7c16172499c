"""How fast the rules' preview (calls/rule_preview.py) judges a big store's last 30 days.

    DATABASE_URL=... python -m bench.rules_bench [--orders 1000000] [--days 365] [--runs 5]
        [--keep]

Gives a bench store `--orders` orders spread over the last `--days` days (written by one
INSERT ... SELECT, no row through Python; the same data on every run, `setseed`): 60% from
one-off customers, 40% from 50,000 returning phones (8 orders each on average, a tenth of
them returners who send back most parcels). Orders older than four days mostly have their
parcel's end, delivered or returned, learnt three to five days after they arrived; newer ones
are shipped or not yet. Amounts run from Rs 300 to Rs 10,200; 2% were placed days before they
arrived. 500 returning phones are blocked.

It then times the preview of every rule at once (a minimum, a maximum, trust after 3
deliveries, hold after 2 returns, stale after 48 hours, the block list) `--runs` times and
prints the median, the orders it judged, its counts, and EXPLAIN ANALYZE's plan of one run.
Target: under a second. The bench store and its orders are deleted at the end unless --keep.

A year of a million orders puts some 82,000 in the preview's window; `--days 60` puts half of
them there (500,000 orders judged, most of the store's phones in the window), the worst case.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from decimal import Decimal

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "robodash.settings")
django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.import_bench import bench_store, ensure_database  # noqa: E402
from calls.figures import counters  # noqa: E402
from calls.models import BlockedPhone, Campaign, Order, Store  # noqa: E402
from calls.rule_preview import PREVIEW_WORK_MEM, WINDOW, preview, preview_sql  # noqa: E402

TARGET_SECONDS = 1.0
RETURNING_PHONES = 50_000
BLOCKED = 500

# r: the phone's draw, r2 the amount, r3 the parcel, r4 its timing. A returning phone is
# 92310XXXXXXX (k below RETURNING_PHONES; k % 10 = 0: a returner), a one-off one 92300XXXXXXX.
ORDERS_SQL = """
WITH drawn AS (
  SELECT g, random() AS r, random() AS r2, random() AS r3, random() AS r4,
    now() - make_interval(secs => g * %(spacing)s) AS created
  FROM generate_series(0, %(orders)s - 1) AS g
), shaped AS (
  SELECT d.*,
    CASE WHEN d.r < 0.6 THEN '92300' || lpad(floor(random() * 10000000)::int::text, 7, '0')
         ELSE '92310' || lpad(floor(random() * %(returning)s)::int::text, 7, '0') END AS phone
  FROM drawn d
), parcelled AS (
  SELECT s.*,
    CASE
      WHEN s.created > now() - interval '4 days' THEN
        CASE WHEN s.r3 < 0.5 THEN 'shipped' ELSE '' END
      WHEN s.r3 < 0.08 THEN ''
      WHEN s.phone LIKE '92310%%' AND right(s.phone, 1) = '0' THEN
        CASE WHEN s.r3 < 0.7 THEN 'returned' ELSE 'delivered' END
      WHEN s.r3 < 0.22 THEN 'returned'
      ELSE 'delivered'
    END AS delivery,
    s.created + make_interval(secs => 259200 + s.r4 * 172800) AS learnt
  FROM shaped s
)
INSERT INTO calls_order (
  order_id, phone, amount, voice_id, text1, text2, text3, text4, text5,
  key1, key2, key3, key4, key5, store_id, campaign_id, customer_name, source, status,
  decision, decided_via, decision_note, decided_at, rejected_reason, shop_ref,
  followup, followup_at, callback_set, called, delivery, delivery_at, delivery_via,
  delivery_learnt_at, placed_at, arrived_at, created_at, updated_at
)
SELECT 'RB-' || lpad(p.g::text, 7, '0'), p.phone, 300 + floor(p.r2 * 100) * 100,
  102, %(store_name)s, 'RB-' || lpad(p.g::text, 7, '0'), '', '', '', '', '', '', '', '',
  %(store_id)s, (%(campaigns)s::bigint[])[1 + p.g %% %(n_campaigns)s], '', 'shopify',
  'confirmed', 'confirmed', 'key', '', p.created + interval '1 hour', '', '',
  '', NULL, false, true, p.delivery,
  CASE WHEN p.delivery <> '' THEN least(p.learnt, now()) END,
  CASE WHEN p.delivery <> '' THEN 'sheet' ELSE '' END,
  CASE WHEN p.delivery <> '' THEN least(p.learnt, now()) END,
  p.created - CASE WHEN p.r4 < 0.02 THEN interval '3 days' ELSE interval '5 minutes' END,
  p.created, p.created, p.created
FROM parcelled p
"""


def give_orders(store: Store, count: int, days: int) -> None:
    """`count` orders RB-0000000 … over the last `days` days, unless the store has them."""
    have = Order.objects.filter(store=store).count()
    if have >= count:
        print(f"the store already has {have:,} orders", flush=True)
        return
    started = time.perf_counter()
    campaigns = [
        Campaign.objects.get_or_create(store=store, name=f"bench {k}")[0].pk for k in range(10)
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.17)")
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        # Counted once at the end (as `manage.py figures --rebuild` does), not row by row.
        cursor.execute("ALTER TABLE calls_order DISABLE TRIGGER USER")
        cursor.execute(
            ORDERS_SQL,
            {
                "spacing": days * 86400 / count,
                "orders": count,
                "returning": RETURNING_PHONES,
                "store_name": store.name,
                "store_id": store.pk,
                "campaigns": campaigns,
                "n_campaigns": len(campaigns),
            },
        )
        cursor.execute("ALTER TABLE calls_order ENABLE TRIGGER USER")
    BlockedPhone.objects.bulk_create(
        BlockedPhone(store=store, phone=f"92310{k:07d}", reason="fake orders")
        for k in range(1, RETURNING_PHONES, RETURNING_PHONES // BLOCKED)
    )
    counters.rebuild()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE calls_order")
    print(f"{count:,} orders given in {time.perf_counter() - started:.1f} s", flush=True)


def clean_up(store: Store) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        for table in ("calls_order", "calls_dailyfigures", "calls_campaign"):
            cursor.execute(f"DELETE FROM {table} WHERE store_id = %s", [store.pk])
    Store.objects.filter(pk=store.pk).delete()


# Set on the store for the preview, never saved: as the settings page previews typed rules.
RULES = {
    "call_min_amount": Decimal(1000),
    "call_max_amount": Decimal(9000),
    "trust_after": 3,
    "hold_after_returns": 2,
    "stale_after_hours": 48,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=365, help="the orders span this many days")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the bench store and orders")
    args = parser.parse_args()

    ensure_database()
    call_command("migrate", verbosity=0)
    store = bench_store(f"Rules Bench Store ({args.days} days)")
    give_orders(store, args.orders, args.days)
    for setting, value in RULES.items():
        setattr(store, setting, value)
    now = timezone.now()
    seconds = []
    result = None
    for _ in range(args.runs):
        started = time.perf_counter()
        result = preview(store, now=now)
        seconds.append(time.perf_counter() - started)
    assert result is not None
    median = statistics.median(seconds)
    load = os.getloadavg()[0]
    print(f"database              {connection.vendor} {connection.settings_dict['NAME']}")
    print(f"load average (1 min)  {load:.2f} on {os.cpu_count()} CPUs")
    print(f"the store holds       {Order.objects.filter(store=store).count():,} orders")
    print(f"over the last         {args.days} days; the preview judged {result.orders:,}")
    print(f"rules                 {', '.join(f'{k} {v}' for k, v in RULES.items())}")
    for line in result.lines:
        print(
            f"  {line.rule:<12} {line.verdict:<5} {line.tally.orders:>9,} orders, "
            f"{line.tally.delivered:>9,} later delivered, {line.tally.returned:>9,} returned"
        )
    for verdict, total in (("skip", result.skipped), ("hold", result.held)):
        print(
            f"  {'in all':<12} {verdict:<5} {total.orders:>9,} orders, "
            f"{total.delivered:>9,} later delivered, {total.returned:>9,} returned"
        )
    runs = ", ".join(f"{s:.3f}" for s in seconds)
    print(f"preview               median {median:.3f} s of {args.runs} runs ({runs})")
    ok = median < TARGET_SECONDS
    print(f"target: under {TARGET_SECONDS:.0f} s ({'met' if ok else 'MISSED'})")
    sql, params = preview_sql(store, since=now - WINDOW, until=now)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL work_mem = '{PREVIEW_WORK_MEM}'")  # as preview() runs it
        cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql}", params)
        print("\n".join(row[0] for row in cursor.fetchall()))
    if not args.keep:
        clean_up(store)


if __name__ == "__main__":
    main()
