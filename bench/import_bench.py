"""How fast, and in how much memory, a big CSV imports into a store that already has orders.

    DATABASE_URL=... python -m bench.import_bench [--rows 100000] [--known 1000000] [--keep]

Gives a bench store `--known` orders (each with its call, imported through the same code),
then writes a CSV of `--rows` orders of which half are orders the store already has, the
other half new (plus about 2% invalid rows and 1% repeated order ids, as a real export has).
It imports the file three ways, each in a process of its own so the memory figures are its
own: today's import into the store (the known half is looked up and places no call), the
same under tracemalloc (the peak of Python allocations; that run is slower), and the import
as it was before orders (a new campaign found nothing to skip: every valid row became a call),
imitated by importing into an empty store. It prints them side by side, with the targets:
under 15 s and 300 MB for today's import. What the runs added is deleted after each, and the
store with its orders at the end unless --keep.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "robodash.settings")
django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import OperationalError, connection, connections, transaction  # noqa: E402

from calls import transitions  # noqa: E402
from calls.intake.uploads import ImportReport, import_file  # noqa: E402
from calls.models import Campaign, Order, Store  # noqa: E402

BENCH_STORE = "Import Bench Store"
EMPTY_STORE = "Import Bench Empty Store"
BAD_ROWS = ("021-3456789", "abc", "+44 7911 123456")
MOBILE_CODES = ("300", "301", "311", "321", "333", "345", "346", "355", "364")


def write_orders(path: Path, rows: int, seed: int = 7, known: int = 0, prefix: str = "ORD") -> None:
    """Stream `rows` orders to `path`: mostly valid, some invalid, some repeated order ids. With
    `known`, every other row is one of the orders ORD-0000000 .. (spread over all `known`)."""
    rng = random.Random(seed)
    spread = max(1, known // max(1, rows // 2))
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("phone,amount,order_id,store_name,text3\r\n")
        for i in range(rows):
            phone = f"0{rng.choice(MOBILE_CODES)}-{rng.randint(1000000, 9999999)}"
            amount = f"{rng.randint(300, 25000)}.{rng.choice(('00', '50', '99'))}"
            order_id = f"{prefix}-{i:07d}"
            if known and i % 2 == 0:
                order_id = f"ORD-{(i // 2) * spread % known:07d}"
            roll = rng.random()
            if roll < 0.02:
                phone = rng.choice(BAD_ROWS)
            elif roll < 0.03 and i > 0:
                order_id = f"{prefix}-{rng.randint(0, i - 1):07d}"  # a repeat: skipped
            out.write(f'{phone},"{amount}",{order_id},Karachi Kitchenware,COD\r\n')


def rss_peak_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


def bench_store(name: str = BENCH_STORE) -> Store:
    store = Store.objects.filter(name=name).first()
    if store is None:
        store = Store(name=name)
        store.api_key = "bench-key-not-used-for-any-request"
        store.save()
    return store


def import_into(path: Path, store: Store, label: str) -> tuple[ImportReport, float]:
    campaign, _created = transitions.draft_campaign(store, f"bench {label} {time.time_ns()}")
    started = time.perf_counter()
    with path.open("rb") as file:
        report = import_file(file, campaign=campaign, filename=path.name)
    return report, time.perf_counter() - started


@dataclass
class Run:
    label: str
    imported: int
    known: int
    duplicates: int
    total_rows: int
    seconds: float
    cpu_seconds: float
    peak_rss: int  # the importing process's peak resident set, bytes
    traced_peak: int | None = None


def _run_in_child(path: Path, store_name: str, label: str, traced: bool, out: Any) -> None:
    connections.close_all()  # the parent's connection is not this process's to use
    store = bench_store(store_name)
    if traced:
        tracemalloc.start()
    cpu = time.process_time()
    report, seconds = import_into(path, store, label)
    cpu_seconds = time.process_time() - cpu
    traced_peak = tracemalloc.get_traced_memory()[1] if traced else None
    counts = (report.imported, report.known_count, report.skipped_duplicates, report.total_rows)
    out.send((counts, seconds, cpu_seconds, rss_peak_bytes(), traced_peak))
    out.close()
    # Undo the import, so the next run finds the store as this one did.
    campaign = Campaign.objects.filter(store=store, name__startswith=f"bench {label} ").get()
    delete_rows("campaign_id", campaign.pk)
    connections.close_all()


def run_apart(path: Path, store_name: str, label: str, traced: bool = False) -> Run:
    """One import in a forked process of its own, so its peak memory is its own."""
    connections.close_all()
    receive, send = multiprocessing.Pipe(duplex=False)
    child = multiprocessing.get_context("fork").Process(
        target=_run_in_child, args=(path, store_name, label, traced, send)
    )
    child.start()
    (imported, known, duplicates, total), seconds, cpu, rss, traced_peak = receive.recv()
    child.join()
    if child.exitcode != 0:
        raise SystemExit(f"the {label} import failed (exit {child.exitcode})")
    return Run(label, imported, known, duplicates, total, seconds, cpu, rss, traced_peak)


def preload(store_name: str, known: int, tmp: Path) -> None:
    """Give the store `known` orders (ORD-0000000 …), each with its call, through the import
    itself; kept between runs with --keep."""
    connections.close_all()
    store = bench_store(store_name)
    have = Order.objects.filter(store=store).count()
    if have >= known:
        print(f"the store already has {have:,} orders", flush=True)
        return
    path = tmp / "history.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("phone,amount,order_id,store_name\r\n")
        for i in range(known):
            out.write(f"0300{i % 10_000_000:07d},1500,ORD-{i:07d},Karachi Kitchenware\r\n")
    print(f"giving the store {known:,} orders…", flush=True)
    report, seconds = import_into(path, store, "history")
    path.unlink()
    with connection.cursor() as cursor:
        for table in ("calls_order", "calls_call", "calls_callevent"):
            cursor.execute(f"VACUUM ANALYZE {table}")
    print(f"  {report.imported:,} orders in {seconds:.1f} s", flush=True)
    connections.close_all()


def delete_rows(column: str, value: int) -> None:
    """Delete the events, calls, orders, uploads and campaigns whose `column` (store_id or
    campaign_id) is `value`, in SQL: the ORM's delete() would first load a million rows into
    this process to cascade them."""
    campaign_column = "id" if column == "campaign_id" else column
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM calls_callevent e USING calls_call c "
            f"WHERE e.call_id = c.id AND c.{column} = %s",
            [value],
        )
        for table in ("calls_call", "calls_order"):
            cursor.execute(f"DELETE FROM {table} WHERE {column} = %s", [value])
        # An import is an upload of its campaign (its rows are gone once it is launched), and
        # its calls were counted in the campaign's daily figures.
        for table in ("calls_upload", "calls_dailyfigures"):
            cursor.execute(
                f"DELETE FROM {table} t USING calls_campaign c "
                f"WHERE t.campaign_id = c.id AND c.{campaign_column} = %s",
                [value],
            )
        cursor.execute(f"DELETE FROM calls_campaign WHERE {campaign_column} = %s", [value])


def clean_up(store: Store) -> None:
    delete_rows("store_id", store.pk)
    Store.objects.filter(pk=store.pk).delete()


def ensure_database() -> None:
    """Create the Postgres database DATABASE_URL names if it is not there yet."""
    try:
        connection.ensure_connection()
    except OperationalError as exc:
        if connection.vendor != "postgresql" or "does not exist" not in str(exc):
            raise
        name = connection.settings_dict["NAME"]
        print(f"creating database {name}", file=sys.stderr)
        with connection._nodb_cursor() as cursor:  # Django's own way in, as its test runner
            cursor.execute(f'CREATE DATABASE "{name}"')


def mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB"


TARGET_SECONDS = 15.0
TARGET_BYTES = 300 * 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--known", type=int, default=1_000_000, help="orders the store has")
    parser.add_argument("--keep", action="store_true", help="keep the bench stores and orders")
    args = parser.parse_args()

    ensure_database()
    call_command("migrate", verbosity=0)
    store = bench_store()
    empty = bench_store(EMPTY_STORE)
    with tempfile.TemporaryDirectory() as tmp:
        # In a process of its own: the parent stays small, and the import runs forked from it
        # start from its memory, not from what a million-row import left behind.
        connections.close_all()
        loader = multiprocessing.get_context("fork").Process(
            target=preload, args=(BENCH_STORE, args.known, Path(tmp))
        )
        loader.start()
        loader.join()
        if loader.exitcode != 0:
            raise SystemExit("giving the bench store its orders failed")
        path = Path(tmp) / "orders.csv"
        write_orders(path, args.rows, known=args.known, prefix="NEW")
        size = path.stat().st_size
        load = os.getloadavg()[0]
        today = run_apart(path, BENCH_STORE, "today")
        traced = run_apart(path, BENCH_STORE, "traced", traced=True)
        before = run_apart(path, EMPTY_STORE, "before-orders")
    assert traced.imported == today.imported

    def column(run: Run) -> list[str]:
        return [
            f"{run.imported:,}",
            f"{run.known:,}",
            f"{run.duplicates:,}",
            f"{run.seconds:.2f} ({run.cpu_seconds:.2f} CPU here)",
            f"{run.total_rows / run.seconds:,.0f}",
            mib(run.peak_rss),
        ]

    names = ["calls placed", "already known", "duplicates in file", "seconds", "rows/s", "peak RSS"]
    print(f"database              {connection.vendor} {connection.settings_dict['NAME']}")
    print(f"load average (1 min)  {load:.2f} on {os.cpu_count()} CPUs")
    print(f"file                  {args.rows:,} rows, {mib(size)}, half of them known orders")
    print(f"the store holds       {Order.objects.filter(store=store).count():,} orders\n")
    header = ("", f"today (store of {args.known:,})", "before orders (empty store)")
    rows = list(zip(names, column(today), column(before), strict=True))
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(3)]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))
    assert traced.traced_peak is not None
    print(f"\ntracemalloc peak (today's import): {mib(traced.traced_peak)}")
    ok_time = today.seconds < TARGET_SECONDS
    ok_memory = today.peak_rss < TARGET_BYTES
    print(
        f"target: under {TARGET_SECONDS:.0f} s ({'met' if ok_time else 'MISSED'}) and "
        f"{mib(TARGET_BYTES)} ({'met' if ok_memory else 'MISSED'})"
    )

    if not args.keep:
        clean_up(store)
        clean_up(empty)


if __name__ == "__main__":
    main()
