"""`make bench`: every benchmark, on a fresh database of its own, figures printed as tables.

    python -m bench [name ...] [--calls 1000000,10000000]

`--calls` is the pages benchmark's scale; several, comma-separated, are measured one after the
other and printed side by side (`make bench BENCH=pages_bench CALLS=1000000,10000000`).

Quote medians and ratios measured side by side in one run: the machine is shared and noisy.
"""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg

from robodash import embedded

BENCHES = [
    ["bench.pipeline_bench"],
    ["bench.import_bench", "--rows", "100000"],
    ["bench.pages_bench"],
    ["bench.counters_bench"],
    ["bench.shops_bench"],
    ["bench.upload_bench", "--rows", "100000"],
    ["bench.deliveries_bench", "--rows", "100000"],
    ["bench.rules_bench"],
]


def bench_database_url(url: str) -> str:
    base, _, name = url.rpartition("/")
    bench_url = f"{base}/{name}_bench"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}_bench"')
        conn.execute(f'CREATE DATABASE "{name}_bench"')
    return bench_url


def main() -> int:
    # The tests' servers: the given ones, the machine's, or robodash's own for the run.
    with embedded.servers_for_tests() as servers:
        print("\n".join(servers.said))
        env = {
            **os.environ,
            "DATABASE_URL": bench_database_url(servers.database_url),
            "CELERY_BROKER_URL": servers.broker_url,
        }
        return run_benches(env)


def run_benches(env: dict[str, str]) -> int:
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], env=env, check=True)
    only = [arg for arg in sys.argv[1:] if not arg.startswith("--calls")]
    calls = [arg.split("=", 1)[1] for arg in sys.argv[1:] if arg.startswith("--calls=")]
    failed = 0
    for bench in BENCHES:
        if only and bench[0].split(".")[-1] not in only:
            continue
        if not os.path.exists(bench[0].replace(".", "/") + ".py"):
            print(f"\n(skipping {bench[0]}: not written yet)")
            continue
        print(f"\n# {bench[0]}", flush=True)
        if bench[0] == "bench.pages_bench" and calls:
            bench = [*bench, "--calls", calls[-1]]
        failed += subprocess.run([sys.executable, "-m", *bench], env=env).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
