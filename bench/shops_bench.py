"""How many shop orders a second robodash takes in, and how fast it answers each: signed Shopify
webhooks and POST /api/v1/orders, at 1, 8 and 32 senders at once.

    DATABASE_URL=... python -m bench.shops_bench [--requests 400] [--workers 4]

Runs a real gunicorn (sync workers, as in production) on the bench database and sends from
threads of this process, each request a new order (so each one is stored with its queued call:
the whole intake, not a duplicate's short path). Prints orders per second and the median and
p95 time to answer, per sender count. The API's per-token limit is lifted for the run (it would
answer 429 past 600 a minute, which is the point of it, not what is measured here).
"""

from __future__ import annotations

import argparse
import json
import os
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
from shops.models import ApiToken, ReceivedWebhook, ShopConnection  # noqa: E402
from shops.signatures import base64_hmac  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SENDERS = (1, 8, 32)
SECRET = "bench-webhook-secret"
STORE = "Shops Bench Store"


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
    store.api_key = "bench-provider-key-0000"
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
    make: Callable[[int], tuple[str, bytes, dict[str, str]]],
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


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.shops_bench", description=__doc__)
    parser.add_argument("--requests", type=int, default=400, help="per sender count and kind")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    args = parser.parse_args()
    store, token = bench_store()
    port = free_port()
    env = {
        **os.environ,
        "ALLOWED_HOSTS": "127.0.0.1",
        "ROBODASH_BEHIND_TLS_PROXY": "false",
        "ROBODASH_API_RATE_PER_MINUTE": "100000000",
        "LOG_LEVEL": "WARNING",
    }
    log = tempfile.NamedTemporaryFile(prefix="shops-bench-gunicorn-", suffix=".log")  # noqa: SIM115
    server = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "robodash.wsgi",
            "-w", str(args.workers), "-b", f"127.0.0.1:{port}", "--log-level", "warning",
        ],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(f"{base_url}/api/v1/openapi.json", timeout=2)
                break
            except requests.RequestException:  # not listening yet, or its workers still booting
                time.sleep(0.2)
        print(f"gunicorn, {args.workers} sync workers; {args.requests} new orders per row")
        print(f"{'intake':<26}{'senders':>8}{'orders/s':>10}{'median ms':>11}{'p95 ms':>9}")
        first = 0
        for kind, make, expected in (
            ("Shopify webhook (signed)", lambda n: shopify_request(store, n), 200),
            ("POST /api/v1/orders", lambda n: api_request(token, n), 201),
        ):
            for senders in SENDERS:
                rate, median, p95 = run(base_url, make, senders, args.requests, first, expected)
                first += args.requests
                print(f"{kind:<26}{senders:>8}{rate:>10.0f}{median:>11.1f}{p95:>9.1f}")
        print("aim: at least 200 orders/s and a p95 under 50 ms")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        clean(store)
    return 0


if __name__ == "__main__":
    sys.exit(main())
