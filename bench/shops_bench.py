"""A sale's peak: shop webhooks beside the sign-in page under the same 32 senders, then every
accepted order taken in and called exactly once.

    DATABASE_URL=... CELERY_BROKER_URL=... python -m bench.shops_bench [--rounds 3] [--seconds 5]

Runs a real gunicorn (3 sync workers, as compose runs it) on the bench database and sends over
32 connections with wrk (Debian's package; or from 32 threads of this process, `--senders
python`, which take a share of the machine themselves), in rounds, one kind after the other
within each round so that the machine's noise falls on all of them alike: the sign-in page
(GET, a plain Django page), a signed Shopify order webhook (each one a new order: checked,
stored, answered; a worker takes it in later) and POST /api/v1/orders (synchronous: the order
and its queued call made before the 201). Prints the median rate and p95 of each, and the
webhook's rate as a share of the sign-in page's (the aim: at least 0.7x, and a p95 under
100 ms).

Then a Celery worker (4 processes, as compose runs it) and beat start against the simulator:
how fast the stored deliveries become orders, and whether each accepted order was called
exactly once (the simulator's own count). The API's per-token limit is lifted for the run (it
would answer 429 past 600 a minute, which is the point of it, not what is measured here).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import django
import requests

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "robodash.settings")
django.setup()

from calls.models import Call, Order, Store  # noqa: E402
from robodash.celery import app  # noqa: E402
from shops.models import ApiToken, ReceivedWebhook, ShopConnection  # noqa: E402
from shops.signatures import base64_hmac  # noqa: E402
from simulator.control import SimulatorProcess  # noqa: E402
from tests.support.pipeline import Pipeline, wait_for  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SENDERS = 32
SECRET = "bench-webhook-secret"
STORE = "Shops Bench Store"
BENCH_KEY = "bench-shops-key-5d2c"
AIM_RATIO, AIM_P95_MS = 0.7, 100.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean(store: Store) -> None:
    """What a run added: the orders with their calls and events, the deliveries seen."""
    Call.objects.filter(store=store).delete()
    Order.objects.filter(store=store).delete()
    ReceivedWebhook.objects.filter(connection__store=store).delete()


def bench_store() -> tuple[Store, str]:
    store, _ = Store.objects.get_or_create(name=STORE, defaults={"default_voice_id": 102})
    clean(store)
    store.api_key = BENCH_KEY
    store.calling_start = store.calling_end = dt.time(0, 0)  # around the clock
    store.save()
    connection = ShopConnection.objects.filter(store=store, kind="shopify").first()
    connection = connection or ShopConnection(store=store, kind="shopify")
    connection.shop_domain = "bench.myshopify.com"
    connection.set_secrets(access_token="shpat_bench", webhook_secret=SECRET)
    connection.save()
    _, token = ApiToken.issue(store, "bench")
    return store, token


def shopify_request(store: Store, n: int) -> tuple[str, bytes, dict[str, str]]:
    body = json.dumps(
        {
            "id": 900000000 + n,
            "name": f"#B{n}",
            "total_price": "1500.00",
            "payment_gateway_names": ["Cash on Delivery (COD)"],
            "shipping_address": {"phone": f"0300{n % 10000000:07d}", "name": "Bench"},
        }
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Webhook-Id": f"bench-{n}",
        "X-Shopify-Hmac-Sha256": base64_hmac(body, SECRET),
    }
    return f"/hooks/shopify/{store.pk}/", body, headers


def api_request(token: str, n: int) -> tuple[str, bytes, dict[str, str]]:
    body = json.dumps(
        {"order_id": f"API-{n}", "phone": f"0301{n % 10000000:07d}", "amount": "1500.00"}
    ).encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    return "/api/v1/orders", body, headers


def run(
    base_url: str,
    make: Callable[[int], tuple[str, bytes | None, dict[str, str]]],
    senders: int,
    total: int,
    first: int,
    expected: int,
) -> tuple[float, float, float]:
    """(orders per second, median ms, p95 ms) of `total` requests from `senders` threads."""
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    numbers = iter(range(first, first + total))

    def sender() -> None:
        session = requests.Session()
        while True:
            with lock:
                n = next(numbers, None)
            if n is None:
                return
            path, body, headers = make(n)
            started = time.perf_counter()
            if body is None:  # a page
                response = session.get(base_url + path, headers=headers, timeout=30)
            else:
                response = session.post(base_url + path, data=body, headers=headers, timeout=30)
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                if response.status_code != expected:
                    failures.append(f"{response.status_code} {response.text[:200]}")

    started = time.perf_counter()
    threads = [threading.Thread(target=sender) for _ in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    if failures:
        raise SystemExit(f"{len(failures)} requests failed, e.g. {failures[0]}")
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return total / wall, statistics.median(ordered) * 1000, p95 * 1000


# wrk's script: each of its threads sends its own slice of the requests written to a file (one a
# line: method, path, then header and body fields, tab-separated), so every webhook is a new order;
# done() prints the figures this bench reads. (wrk is C: the senders cost the machine little.)
WRK_SCRIPT = r"""
local threads, counter = {}, 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
function init(args)
  local count, per = tonumber(args[2]), tonumber(args[3])
  requests, n = {}, 0
  local first, line_no = id * per, 0
  for line in io.lines(args[1]) do
    if line_no >= first and line_no < first + per then
      local fields = {}
      for field in string.gmatch(line, "[^\t]+") do table.insert(fields, field) end
      local headers = {}
      for i = 3, #fields - 1, 2 do headers[fields[i]] = fields[i + 1] end
      local body = nil
      if #fields % 2 == 1 then body = fields[#fields] end
      table.insert(requests, wrk.format(fields[1], fields[2], headers, body))
    end
    line_no = line_no + 1
  end
end
function request()
  n = n + 1
  if n > #requests then n = 1 end  -- past its slice: a resend (a duplicate), counted apart
  return requests[n]
end
function done(summary, latency, requests)
  io.write(string.format("FIGURES %d %d %d %.3f %.3f\n", summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout,
    summary.duration, latency:percentile(50) / 1000, latency:percentile(95) / 1000))
end
"""
WRK_THREADS = 2


def run_wrk(
    base_url: str,
    make: Callable[[int], tuple[str, bytes | None, dict[str, str]]],
    seconds: float,
    first: int,
    per_thread: int,
) -> tuple[float, float, float]:
    """(requests per second, median ms, p95 ms) of wrk's 32 connections for `seconds`."""
    with tempfile.TemporaryDirectory(prefix="shops-bench-wrk-") as folder:
        lines = []
        for n in range(first, first + per_thread * WRK_THREADS):
            path, body, headers = make(n)
            fields = ["GET" if body is None else "POST", path]
            for name, value in headers.items():
                fields += [name, value]
            if body is not None:
                fields.append(body.decode())
            lines.append("\t".join(fields))
        requests_file = Path(folder) / "requests.tsv"
        requests_file.write_text("\n".join(lines) + "\n")
        script = Path(folder) / "bench.lua"
        script.write_text(WRK_SCRIPT)
        out = subprocess.run(
            [
                "wrk", "-t", str(WRK_THREADS), "-c", str(SENDERS), "-d", f"{seconds:.0f}s",
                "-s", str(script), base_url, "--",
                str(requests_file), str(len(lines)), str(per_thread),
            ],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    [figures] = [line.split()[1:] for line in out.splitlines() if line.startswith("FIGURES")]
    total, errors, micros = int(figures[0]), int(figures[1]), int(figures[2])
    if errors:
        raise SystemExit(f"wrk: {errors} of {total} requests failed or were not 2xx:\n{out}")
    return total / (micros / 1e6), float(figures[3]), float(figures[4])


def sign_in_request(n: int) -> tuple[str, bytes | None, dict[str, str]]:
    return "/accounts/login/", None, {}


def start_gunicorn(port: int, workers: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "ALLOWED_HOSTS": "127.0.0.1",
        "ROBODASH_BEHIND_TLS_PROXY": "false",
        "ROBODASH_API_RATE_PER_MINUTE": "100000000",
        "LOG_LEVEL": "WARNING",
    }
    log = tempfile.NamedTemporaryFile(prefix="shops-bench-gunicorn-", suffix=".log")  # noqa: SIM115
    return subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "robodash.wsgi",
            "-w", str(workers), "-b", f"127.0.0.1:{port}", "--log-level", "warning",
        ],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def wait_until_listening(base_url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(f"{base_url}/api/v1/openapi.json", timeout=2)
            return
        except requests.RequestException:  # not listening yet, or its workers still booting
            time.sleep(0.2)


def take_in_and_call(store: Store, accepted: int) -> None:
    """A worker and beat take the stored deliveries in and call each order: how fast, and
    whether each was called exactly once."""
    sim = SimulatorProcess.start(speed=60.0, seed=3)
    # The pipeline at its real pace (leases, sweeps every 2 s), the provider sped up.
    pipeline = Pipeline(
        base_url=sim.base_url,
        time_scale=1,
        concurrency=4,
        extra_env={"LOG_LEVEL": "WARNING", "ROBODASH_SWEEP_SECONDS": "2"},
    )
    try:
        sim.add_account(
            api_key=BENCH_KEY, username="bench", balance="10000000.00", call_rate="5.50"
        )
        waiting = ReceivedWebhook.objects.filter(connection__store=store, processed_at=None)
        app.control.purge()  # an earlier run's tasks, if one was stopped, would come first
        started = time.perf_counter()
        pipeline.start()
        wait_for(lambda: not waiting.exists(), timeout=900, what="the deliveries to be taken in")
        took = time.perf_counter() - started
        placed = Call.objects.filter(store=store, shop_order__source="shopify").exclude(
            provider_call_id=None
        )
        wait_for(
            lambda: placed.count() == accepted,
            timeout=900,
            what=f"{accepted} orders to be called",
            describe=lambda: f" ({placed.count()} so far)",
        )
        stats = sim.stats()
    finally:
        pipeline.stop()
        sim.stop()
    shop_orders = Order.objects.filter(store=store, source="shopify").count()
    by_order = [count for order, count in stats["calls_by_order"].items() if order.startswith("#B")]
    once = sum(1 for count in by_order if count == 1)
    print(
        f"{accepted} accepted webhooks taken in by one worker (4 processes) in {took:.1f} s "
        f"({accepted / took:.0f} orders/s, the worker starting included)"
    )
    print(
        f"orders made {shop_orders} of {accepted}; called exactly once {once}, "
        f"more than once {sum(1 for count in by_order if count > 1)}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.shops_bench", description=__doc__)
    parser.add_argument("--requests", type=int, default=600, help="per kind and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn sync workers")
    parser.add_argument(
        "--senders",
        choices=["wrk", "python"],
        default="wrk" if shutil.which("wrk") else "python",
        help="wrk (Debian's package: the senders cost little) or this process's threads",
    )
    parser.add_argument("--seconds", type=float, default=5, help="per kind and round, with wrk")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # each row as it comes
    store, token = bench_store()
    port = free_port()
    server = start_gunicorn(port, args.workers)
    base_url = f"http://127.0.0.1:{port}"
    kinds: list[tuple[str, Callable[[int], tuple[str, bytes | None, dict[str, str]]], int]] = [
        ("sign-in page (GET)", sign_in_request, 200),
        ("Shopify webhook (signed)", lambda n: shopify_request(store, n), 200),
        ("POST /api/v1/orders", lambda n: api_request(token, n), 201),
    ]
    figures: dict[str, list[tuple[float, float, float]]] = {name: [] for name, _, _ in kinds}
    try:
        wait_until_listening(base_url)
        each = (
            f"{args.seconds:.0f} s of wrk ({WRK_THREADS} threads, {SENDERS} connections)"
            if args.senders == "wrk"
            else f"{args.requests} requests from {SENDERS} threads of this process"
        )
        print(
            f"gunicorn, {args.workers} sync workers; {each} per kind and round, "
            f"{args.rounds} rounds side by side (medians of the rounds)"
        )
        first = 0
        for _ in range(args.rounds):
            for name, make, expected in kinds:
                if args.senders == "wrk":
                    # Enough new orders for twice the rate the machine has ever shown.
                    per_thread = int(args.seconds * 1500 / WRK_THREADS)
                    figures[name].append(run_wrk(base_url, make, args.seconds, first, per_thread))
                    first += per_thread * WRK_THREADS
                else:
                    figures[name].append(
                        run(base_url, make, SENDERS, args.requests, first, expected)
                    )
                    first += args.requests
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    print(f"{'request':<26}{'per s':>8}{'median ms':>11}{'p95 ms':>9}{'x sign-in':>11}")
    sign_in_rate = statistics.median(rate for rate, _, _ in figures[kinds[0][0]])
    for name, rows in figures.items():
        rate = statistics.median(r[0] for r in rows)
        median_ms = statistics.median(r[1] for r in rows)
        p95_ms = statistics.median(r[2] for r in rows)
        print(
            f"{name:<26}{rate:>8.0f}{median_ms:>11.1f}{p95_ms:>9.1f}{rate / sign_in_rate:>10.2f}x"
        )
    print(
        f"aim: the webhook at {AIM_RATIO}x the sign-in page's rate or more, "
        f"p95 under {AIM_P95_MS:.0f} ms"
    )
    accepted = ReceivedWebhook.objects.filter(connection__store=store).count()
    # The API's orders were the comparison: only the webhooks' go on to be called.
    Call.objects.filter(store=store, shop_order__source="api").delete()
    Order.objects.filter(store=store, source="api").delete()
    try:
        take_in_and_call(store, accepted)
    finally:
        clean(store)
    return 0


if __name__ == "__main__":
    sys.exit(main())
