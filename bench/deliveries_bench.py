"""How fast, and in how much memory, a courier's sheet is applied to a store with many orders.

    DATABASE_URL=... python -m bench.deliveries_bench [--rows 100000] [--orders 1000000]
        [--among 150000] [--keep]

Gives a bench store `--orders` orders (written by one INSERT ... SELECT, no row through Python:
about a third decided confirmed, a tenth cancelled, the rest undecided, over 60 days), then
writes a courier's CSV of `--rows` parcels of distinct orders as couriers word them (delivered
most, some returned in their several spellings, some still in transit), with about 1% of
references written "#ID" and 0.5% in lower case, 2% naming no order of the store and 1% with a
status word robodash does not know. The parcels are drawn from the store's newest `--among`
orders (default 150,000, the last nine days or so): a courier's report covers the parcels booked
in its last weeks. `--among` equal to `--orders` spreads them over every order, the worst case:
then every page of the orders and of each of their fourteen indexes is written for some ten rows
(and, after a checkpoint, copied whole into the WAL: 700 MB for 100,000 rows).

It applies the sheet as `manage.py import_deliveries` does (calls/intake/delivery_sheets.py
import_sheet), each run in a forked process of its own so its peak memory is its own: the first
time (every matched row recorded), then the same sheet again (every row already known: nothing
written). For comparison it times record_delivery, one call per row, on 2,000 other orders.
Targets: under 15 s and 300 MB for the first run. The bench store and its orders are deleted at
the end unless --keep.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "robodash.settings")
django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, connections, transaction  # noqa: E402

from bench.import_bench import (  # noqa: E402
    TARGET_BYTES,
    TARGET_SECONDS,
    bench_store,
    ensure_database,
    mib,
    rss_peak_bytes,
)
from calls.figures import counters  # noqa: E402
from calls.intake.delivery_sheets import import_sheet  # noqa: E402
from calls.models import Campaign, Order, Store  # noqa: E402
from calls.transitions import record_delivery  # noqa: E402

BENCH_STORE = "Deliveries Bench Store"
CAMPAIGNS = 10
PER_ROW_SAMPLE = 2000
# The couriers' words, with how often each appears in the sheet (PostEx, Leopards, TCS, Trax).
WORDS = (
    ("Delivered", 0.55),
    ("DELIVERED", 0.05),
    ("Returned to Shipper", 0.08),
    ("RTO", 0.04),
    ("Return to origin", 0.03),
    ("Returned", 0.03),
    ("In Transit", 0.08),
    ("Out For Delivery", 0.07),
    ("Dispatched", 0.03),
    ("Booked", 0.03),
    ("Delivery Under Review", 0.01),  # a word robodash does not know
)

ORDERS_SQL = """
INSERT INTO calls_order (
  order_id, phone, amount, voice_id, text1, text2, text3, text4, text5,
  key1, key2, key3, key4, key5, store_id, campaign_id, customer_name, source, status,
  decision, decided_via, decision_note, decided_at, rejected_reason, shop_ref,
  followup, followup_at, callback_set, called, created_at, updated_at
)
SELECT 'BX-' || lpad(g::text, 7, '0'), '92300' || lpad((g %% 10000000)::text, 7, '0'), 1500,
  102, %(store_name)s, 'BX-' || lpad(g::text, 7, '0'), '', '', '', '', '', '', '', '',
  %(store_id)s, (%(campaigns)s::bigint[])[1 + g %% %(n_campaigns)s], '', 'csv',
  CASE WHEN g %% 10 < 3 THEN 'confirmed' WHEN g %% 10 = 3 THEN 'cancelled'
       WHEN g %% 10 = 4 THEN 'unreachable' ELSE 'waiting' END,
  CASE WHEN g %% 10 < 3 THEN 'confirmed' WHEN g %% 10 = 3 THEN 'cancelled' ELSE '' END,
  CASE WHEN g %% 10 < 4 THEN 'key' ELSE '' END, '',
  CASE WHEN g %% 10 < 4 THEN now() - make_interval(secs => g * 5) END, '', '',
  CASE WHEN g %% 10 = 4 THEN 'unreachable' ELSE '' END,
  CASE WHEN g %% 10 = 4 THEN now() - make_interval(secs => g * 5) END,
  false, g %% 10 < 5, now() - make_interval(secs => g * 5), now() - make_interval(secs => g * 5)
FROM generate_series(0, %(orders)s - 1) AS g
"""


def give_orders(store: Store, count: int) -> None:
    """`count` orders BX-0000000 … for the store, unless it has them (--keep)."""
    have = Order.objects.filter(store=store).count()
    if have >= count:
        print(f"the store already has {have:,} orders", flush=True)
        return
    started = time.perf_counter()
    campaigns = [
        Campaign.objects.get_or_create(store=store, name=f"bench {k}")[0].pk
        for k in range(CAMPAIGNS)
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        # Counted once at the end (as `manage.py figures --rebuild` does), not row by row.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the foreign keys checked as rows go in
        cursor.execute("ALTER TABLE calls_order DISABLE TRIGGER USER")
        cursor.execute(
            ORDERS_SQL,
            {
                "store_name": store.name,
                "store_id": store.pk,
                "campaigns": campaigns,
                "n_campaigns": len(campaigns),
                "orders": count,
            },
        )
        cursor.execute("ALTER TABLE calls_order ENABLE TRIGGER USER")
    counters.rebuild()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE calls_order")
    print(f"{count:,} orders given in {time.perf_counter() - started:.1f} s", flush=True)


def write_sheet(path: Path, rows: int, among: int, seed: int = 11) -> None:
    """A PostEx-like sheet of `rows` parcels of distinct orders among the newest `among` (see the
    module docstring)."""
    rng = random.Random(seed)
    # BX-0000000 is the newest order; the first PER_ROW_SAMPLE are the per-row timing's.
    picked = rng.sample(range(PER_ROW_SAMPLE, PER_ROW_SAMPLE + among), rows)
    words, weights = zip(*WORDS, strict=True)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("Tracking Number,Order Ref,Customer Name,City,COD Amount,Order Status\r\n")
        for n, g in enumerate(picked):
            ref = f"BX-{g:07d}"
            roll = rng.random()
            if roll < 0.02:
                ref = f"ZZ-{g:07d}"  # no order of this store
            elif roll < 0.03:
                ref = f"#{ref}"
            elif roll < 0.035:
                ref = ref.lower()
            word = rng.choices(words, weights)[0]
            out.write(f"PX{n:09d},{ref},Customer {n},Karachi,1500,{word}\r\n")


def _apply_in_child(path: Path, store_id: int, out: Any) -> None:
    connections.close_all()  # the parent's connection is not this process's to use
    store = Store.objects.get(pk=store_id)
    cpu = time.process_time()
    started = time.perf_counter()
    with path.open("rb") as file:
        summary = import_sheet(file, store)
    seconds = time.perf_counter() - started
    out.send((dict(summary.counts), seconds, time.process_time() - cpu, rss_peak_bytes()))
    out.close()
    connections.close_all()


def apply_apart(path: Path, store: Store) -> tuple[Counter[str], float, float, int]:
    """One import of the sheet in a forked process of its own, so its peak memory is its own."""
    connections.close_all()
    receive, send = multiprocessing.Pipe(duplex=False)
    child = multiprocessing.get_context("fork").Process(
        target=_apply_in_child, args=(path, store.pk, send)
    )
    child.start()
    send.close()  # the child's end: a child that dies closes the pipe, and recv() says so
    try:
        counts, seconds, cpu, rss = receive.recv()
    except EOFError:
        counts, seconds, cpu, rss = {}, 0.0, 0.0, 0
    child.join()
    if child.exitcode != 0:
        raise SystemExit(f"applying the sheet failed (exit {child.exitcode})")
    return Counter(counts), seconds, cpu, rss


def per_row_seconds(store: Store) -> float:
    """record_delivery, one call per row, on the first PER_ROW_SAMPLE orders (not in the sheet)."""
    pks = list(
        Order.objects.filter(store=store, order_id__lt=f"BX-{PER_ROW_SAMPLE:07d}")
        .order_by("order_id")
        .values_list("pk", flat=True)
    )
    started = time.perf_counter()
    for pk in pks:
        record_delivery(pk, Order.Delivery.DELIVERED, via=Order.DeliveryVia.SHEET)
    return (time.perf_counter() - started) / max(len(pks), 1)


def clean_up(store: Store) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM calls_orderevent e USING calls_order o "
            "WHERE e.order_id = o.id AND o.store_id = %s",
            [store.pk],
        )
        for table in ("calls_order", "calls_dailyfigures", "calls_campaign"):
            cursor.execute(f"DELETE FROM {table} WHERE store_id = %s", [store.pk])
    Store.objects.filter(pk=store.pk).delete()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=1_000_000, help="orders the store has")
    parser.add_argument(
        "--among", type=int, default=150_000, help="the sheet's orders are of the newest N"
    )
    parser.add_argument("--keep", action="store_true", help="keep the bench store and orders")
    args = parser.parse_args()
    args.among = min(args.among, args.orders - PER_ROW_SAMPLE)
    if args.rows > args.among:
        parser.error("--rows must be at most --among, and leave the per-row sample among --orders")

    ensure_database()
    call_command("migrate", verbosity=0)
    store = bench_store(BENCH_STORE)
    give_orders(store, args.orders)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "postex.csv"
        write_sheet(path, args.rows, args.among)
        size = path.stat().st_size
        load = os.getloadavg()[0]
        first = apply_apart(path, store)
        again = apply_apart(path, store)
    per_row = per_row_seconds(store)

    def column(run: tuple[Counter[str], float, float, int]) -> list[str]:
        counts, seconds, cpu, rss = run
        return [
            f"{counts['applied']:,}",
            f"{counts['repeat']:,}",
            f"{counts['backwards'] + counts['not_later']:,}",
            f"{counts['unknown_order'] + counts['several_orders']:,}",
            f"{counts['unknown_status'] + counts['no_status'] + counts['no_order']:,}",
            f"{seconds:.2f} ({cpu:.2f} CPU here)",
            f"{sum(counts.values()) / seconds:,.0f}",
            mib(rss),
        ]

    names = [
        "recorded",
        "already known",
        "ignored (older/backwards)",
        "unknown order",
        "unreadable",
        "seconds",
        "rows/s",
        "peak RSS",
    ]
    print(f"database              {connection.vendor} {connection.settings_dict['NAME']}")
    print(f"load average (1 min)  {load:.2f} on {os.cpu_count()} CPUs")
    print(f"sheet                 {args.rows:,} rows, {mib(size)}")
    print(f"                      of the newest {args.among:,} orders")
    print(f"the store holds       {Order.objects.filter(store=store).count():,} orders\n")
    header = ("", "first time", "the same sheet again")
    rows = list(zip(names, column(first), column(again), strict=True))
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(3)]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))
    print(
        f"\nrecord_delivery one row at a time: {per_row * 1000:.2f} ms a row, "
        f"{per_row * args.rows:,.0f} s for {args.rows:,} rows"
    )
    ok_time, ok_memory = first[1] < TARGET_SECONDS, first[3] < TARGET_BYTES
    print(
        f"target: under {TARGET_SECONDS:.0f} s ({'met' if ok_time else 'MISSED'}) and "
        f"{mib(TARGET_BYTES)} ({'met' if ok_memory else 'MISSED'})"
    )
    if not args.keep:
        clean_up(store)


if __name__ == "__main__":
    main()
