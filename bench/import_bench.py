"""How fast, and in how much memory, a big CSV imports.

    DATABASE_URL=... python -m bench.import_bench [--rows 100000] [--keep]

Writes a CSV of `--rows` orders (about 2% invalid rows and 1% repeated order ids, as a real
export has), imports it into a fresh draft campaign of a bench store, and prints rows, seconds,
rows/s and memory. The import runs twice: once plain, for the time and the growth of the
process's peak RSS (ru_maxrss), and once under tracemalloc, for the peak of Python allocations
(tracemalloc slows Python down, so that run's time is not the one to quote). Everything the
bench created is deleted afterwards unless --keep.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "robodash.settings")
django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import OperationalError, connection  # noqa: E402

from calls.imports import ImportReport, import_csv  # noqa: E402
from calls.models import Call, CallEvent, Campaign, Store  # noqa: E402

BENCH_STORE = "Import Bench Store"
BAD_ROWS = ("021-3456789", "abc", "+44 7911 123456")
MOBILE_CODES = ("300", "301", "311", "321", "333", "345", "346", "355", "364")


def write_orders(path: Path, rows: int, seed: int = 7) -> None:
    """Stream `rows` orders to `path`: mostly valid, some invalid, some repeated order ids."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("phone,amount,order_id,store_name,text3\r\n")
        for i in range(rows):
            phone = f"0{rng.choice(MOBILE_CODES)}-{rng.randint(1000000, 9999999)}"
            amount = f"{rng.randint(300, 25000)}.{rng.choice(('00', '50', '99'))}"
            order_id = f"ORD-{i:07d}"
            roll = rng.random()
            if roll < 0.02:
                phone = rng.choice(BAD_ROWS)
            elif roll < 0.03 and i > 0:
                order_id = f"ORD-{rng.randint(0, i - 1):07d}"  # a repeat: skipped
            out.write(f'{phone},"{amount}",{order_id},Karachi Kitchenware,COD\r\n')


def rss_peak_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


def bench_store() -> Store:
    store = Store.objects.filter(name=BENCH_STORE).first()
    if store is None:
        store = Store(name=BENCH_STORE)
        store.api_key = "bench-key-not-used-for-any-request"
        store.save()
    return store


def import_once(path: Path, store: Store, label: str) -> tuple[ImportReport, float]:
    campaign = Campaign.objects.create(
        store=store, name=f"bench {label} {time.time_ns()}", status=Campaign.Status.DRAFT
    )
    started = time.perf_counter()
    with path.open("rb") as file:
        report = import_csv(file, campaign=campaign)
    return report, time.perf_counter() - started


def clean_up(store: Store) -> None:
    CallEvent.objects.filter(call__store=store).delete()
    Call.objects.filter(store=store).delete()
    Campaign.objects.filter(store=store).delete()
    store.delete()


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="keep the imported calls")
    args = parser.parse_args()

    ensure_database()
    call_command("migrate", verbosity=0)
    store = bench_store()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "orders.csv"
        write_orders(path, args.rows)
        size = path.stat().st_size

        load = os.getloadavg()[0]
        rss_before = rss_peak_bytes()
        cpu_before = time.process_time()
        report, seconds = import_once(path, store, "plain")
        cpu_seconds = time.process_time() - cpu_before
        rss_growth = rss_peak_bytes() - rss_before

        tracemalloc.start()
        traced_report, traced_seconds = import_once(path, store, "traced")
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert traced_report.imported == report.imported

    table = [
        ("database", f"{connection.vendor} {connection.settings_dict['NAME']}"),
        ("load average (1 min)", f"{load:.2f} on {os.cpu_count()} CPUs"),
        ("file", f"{args.rows:,} rows, {mib(size)}"),
        ("imported", f"{report.imported:,}"),
        ("duplicates skipped", f"{report.skipped_duplicates:,}"),
        ("rejected", f"{len(report.rejected):,}"),
        ("seconds", f"{seconds:.2f} (of which {cpu_seconds:.2f} s CPU in this process)"),
        ("rows/s", f"{report.total_rows / seconds:,.0f}"),
        ("peak RSS growth (ru_maxrss)", mib(rss_growth)),
        ("tracemalloc peak", f"{mib(traced_peak)} (that run: {traced_seconds:.2f} s)"),
    ]
    width = max(len(name) for name, _ in table)
    for name, value in table:
        print(f"{name:<{width}}  {value}")

    if not args.keep:
        clean_up(store)


if __name__ == "__main__":
    main()
