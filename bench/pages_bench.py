"""Server time of the pages at a million calls (or ten), side by side with the admin changelist
(the Calls and Orders pages each with their own model's).

    DATABASE_URL=... python -m bench.pages_bench [--calls 1000000] [--requests 40] [--reuse]
    DATABASE_URL=... python -m bench.pages_bench --calls 1000000,10000000

With several scales, each is measured in a fresh database of its own (named after the scale,
beside DATABASE_URL's), one after the other, and a last table puts their p95s side by side.

Run by `make bench` on a fresh database (bench/__main__.py). Fills it with `--calls` calls in 50
campaigns over 60 days (bench/demo_data.py; each call the only call of its order, so as many
orders), then times each page with the Django test Client in-process: server time, no network
and no browser. Every page is requested `--requests` times after a warm-up, the pages taken
round-robin so that noise from the shared machine falls on all of them alike. Prints p50 and
p95 per page and compares each with its admin counterpart (the plain, filtered or searched
changelist). Goal: every page under 100 ms at p95, and faster than
the admin changelist. For a page over budget, its slowest query is shown with EXPLAIN ANALYZE.
Exit status 1 when a page misses the goal.

The overview, reports and campaign pages read the daily figures PostgreSQL keeps as calls
change (calls/figures/counters.py); the demo data is loaded with those triggers off and counted
once at the end, which generate() prints.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "robodash.settings")
django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from calls.models import Call, Campaign, Store, User  # noqa: E402

BUDGET_MS = 100.0
WARMUP_ROUNDS = 3


@dataclass
class Page:
    label: str
    url: str
    admin: str = ""  # label of the admin page it is compared with; blank for admin pages
    samples: list[float] = field(default_factory=list)
    queries: list[dict[str, str]] = field(default_factory=list)

    @property
    def db_ms(self) -> float:
        """Time the database took for one request's queries (one sample, for the split)."""
        return sum(float(q.get("time") or 0) for q in self.queries) * 1000

    @property
    def is_admin(self) -> bool:
        return not self.admin

    def p(self, q: int) -> float:
        ordered = sorted(self.samples)
        if len(ordered) == 1:
            return ordered[0]
        return statistics.quantiles(ordered, n=100, method="inclusive")[q - 1]


def percentile_ms(page: Page, q: int) -> str:
    return f"{page.p(q):8.1f}"


def ensure_data(calls: int, reuse: bool) -> None:
    """The demo million, generated unless --reuse finds it already there. Other benches of
    `make bench` may have left a few calls of their own in the database: they stay, and count."""
    from bench import demo_data

    have = Call.objects.count()
    demo_there = Store.objects.filter(name=demo_data.DEMO_STORES[0].name).exists()
    if demo_there:
        if reuse and have >= calls:
            print(f"reusing the {have:,} calls already in the database")
            return
        raise SystemExit(
            "the demo data is already in this database: pass --reuse to measure it, or run on "
            "a fresh database (make bench does)"
        )
    print(f"generating {calls:,} calls in 50 campaigns over 60 days…", flush=True)
    data = demo_data.generate(calls=calls, campaigns=50, days=60, events=200)
    print(f"done in {data.seconds:.1f} s", flush=True)


def choose_pages() -> list[Page]:
    """The pages, with arguments taken from the data: a big finished campaign, a store, a
    phone prefix and an order id that exist."""
    campaigns = list(Campaign.objects.order_by("-created_at")[:10])
    campaign = campaigns[len(campaigns) // 2]  # a finished campaign of average size
    store = Store.objects.order_by("name").first()
    assert store is not None, "no store: the demo data is missing"
    of_store = Call.objects.filter(store=store).order_by("-created_at")
    sample = of_store[min(1234, of_store.count() - 1)]  # past the first page, when there is one
    phone_prefix = "0" + sample.phone[2:8]  # "0300123…" as a clerk types it: 6 digits
    order_prefix = sample.order_id[:-2]  # "KK-1234" matches a hundred orders
    call = Call.objects.filter(outcome=Call.Outcome.CALLBACK_REQUESTED).order_by("-id").first()
    assert call is not None
    filters = f"store={store.pk}&outcome=cancelled"
    admin_filters = f"store__id__exact={store.pk}&outcome__exact=cancelled"
    # /orders/ searched by part of an id: a rare part (the end of one id: a handful of orders)
    # and a common one ("100", in about one id in seventy at 1M, in the newest ones at 10M).
    rare_part = sample.order_id[-6:]
    common_part = "100"
    orders_admin = "/admin/calls/order/"
    return [
        Page("overview  /", "/", admin="admin changelist"),
        Page("calls  /calls/", "/calls/", admin="admin changelist"),
        Page("calls filtered (store+outcome)", f"/calls/?{filters}", admin="admin filtered"),
        Page("calls searched (phone prefix)", f"/calls/?q={phone_prefix}", admin="admin search"),
        Page("calls searched (order id)", f"/calls/?q={order_prefix}", admin="admin search"),
        Page("calls page 2 (older)", "", admin="admin changelist"),  # url filled below
        Page("call  /calls/<id>/", f"/calls/{call.pk}/", admin="admin changelist"),
        Page("order  /orders/<id>/", f"/orders/{call.shop_order_id}/", admin="admin changelist"),
        Page(
            "calls searched (exact order id)", f"/calls/?q={sample.order_id}", admin="admin search"
        ),
        Page("campaigns  /campaigns/", "/campaigns/", admin="admin changelist"),
        Page("campaign  /campaigns/<id>/", f"/campaigns/{campaign.pk}/", admin="admin changelist"),
        Page("follow-ups  /followups/", "/followups/", admin="admin changelist"),
        Page("reports  /reports/", "/reports/", admin="admin changelist"),
        Page("orders  /orders/", "/orders/", admin="admin orders"),
        Page(
            "orders ready to ship (decision)",
            "/orders/?decision=confirmed",
            admin="admin orders filtered",
        ),
        Page(
            "orders searched (rare id part)", f"/orders/?q={rare_part}", admin="admin orders rare"
        ),
        Page(
            "orders searched (common: 100)", f"/orders/?q={common_part}", admin="admin orders 100"
        ),
        Page("admin changelist", "/admin/calls/call/"),
        Page("admin filtered", f"/admin/calls/call/?{admin_filters}"),
        Page("admin search", f"/admin/calls/call/?q={sample.order_id[:-2]}"),
        Page("admin orders", orders_admin),
        Page("admin orders filtered", f"{orders_admin}?decision__exact=confirmed"),
        Page("admin orders rare", f"{orders_admin}?q={rare_part}"),
        Page("admin orders 100", f"{orders_admin}?q={common_part}"),
    ]


def older_page_url(client: Client) -> str:
    """The Calls page's own "Older →" link, as a person paging back would follow it."""
    response = client.get("/calls/")
    html = response.content.decode()
    marker = 'rel="next" href="'
    start = html.find(marker)
    if start < 0:
        return "/calls/"
    url = html[start + len(marker) : html.find('"', start + len(marker))]
    return url.replace("&amp;", "&")


def request_once(client: Client, page: Page) -> float:
    started = time.perf_counter()
    response = client.get(page.url)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise SystemExit(f"{page.url} answered {response.status_code}, not 200")
    return elapsed


def capture_queries(client: Client, page: Page) -> None:
    with CaptureQueriesContext(connection) as captured:
        client.get(page.url)
    page.queries = list(captured.captured_queries)


def explain(sql: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())


def run(pages: list[Page], client: Client, rounds: int, say: Callable[[str], None]) -> None:
    for _ in range(WARMUP_ROUNDS):
        for page in pages:
            request_once(client, page)
    say(f"warm-up done; {rounds} rounds of {len(pages)} pages…")
    for n in range(rounds):
        for page in pages:
            page.samples.append(request_once(client, page))
        if (n + 1) % 10 == 0:
            say(f"  {n + 1} rounds")


def report(pages: list[Page]) -> bool:
    by_label = {page.label: page for page in pages}
    print()
    print(f"{'page':<34} {'p50 ms':>8} {'p95 ms':>8} {'queries':>7} {'db ms':>6}   "
          f"{'vs admin':<18} {'admin p95':>9} {'ratio':>6}  verdict")  # fmt: skip
    print("-" * 119)
    all_ok = True
    for page in pages:
        verdict, versus, admin_p95, ratio = "", "", "", ""
        if not page.is_admin:
            admin = by_label[page.admin]
            versus = admin.label
            admin_p95 = f"{admin.p(95):9.1f}"
            ratio = f"{page.p(95) / admin.p(95):5.2f}x"
            problems = []
            if page.p(95) >= BUDGET_MS:
                problems.append(f"p95 >= {BUDGET_MS:.0f} ms")
            if page.p(95) >= admin.p(95):
                problems.append("slower than admin")
            verdict = "ok" if not problems else "SLOW: " + ", ".join(problems)
            all_ok = all_ok and not problems
        print(
            f"{page.label:<34} {percentile_ms(page, 50)} {percentile_ms(page, 95)} "
            f"{len(page.queries):>7} {page.db_ms:6.0f}   {versus:<18} {admin_p95:>9} {ratio:>6}  "
            f"{verdict}"
        )
    print()
    print("db ms = the database's share of one request (the rest is Python and templates);")
    print("ratio = the page's p95 / its admin counterpart's p95 (below 1: faster than admin).")
    return all_ok


def explain_slow(pages: list[Page]) -> None:
    for page in pages:
        if page.is_admin or page.p(95) < BUDGET_MS:
            continue
        timed = sorted(page.queries, key=lambda q: float(q.get("time") or 0), reverse=True)
        if not timed:
            continue
        slowest = timed[0]
        print(f"\n## {page.label} ({page.url}): slowest of {len(timed)} queries, "
              f"{float(slowest['time']) * 1000:.1f} ms")  # fmt: skip
        print(slowest["sql"])
        print(explain(slowest["sql"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pages_bench", description=__doc__)
    parser.add_argument(
        "--calls",
        default="1000000",
        help="how many calls; several, comma-separated, are measured side by side",
    )
    parser.add_argument("--json", default="", help="also write the p95s to this file")
    parser.add_argument("--requests", type=int, default=40, help="timed requests per page")
    parser.add_argument("--reuse", action="store_true", help="measure the calls already there")
    parser.add_argument(
        "--only", default="", help="comma-separated words: time only pages whose label has one"
    )
    args = parser.parse_args(argv)

    def say(message: str) -> None:
        print(message, flush=True)

    scales = [int(part.replace("_", "")) for part in args.calls.split(",") if part.strip()]
    if len(scales) > 1:
        return compare_scales(scales, argv or sys.argv[1:])
    ensure_data(scales[0], args.reuse)
    admin = User.objects.filter(role=User.Role.ADMIN, is_superuser=True).first()
    if admin is None:
        raise SystemExit("no admin user with Django admin access in the database")
    # In-process, no network; the host is one ALLOWED_HOSTS has (no setup_test_environment:
    # its template instrumentation would add its own cost to every page).
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(admin)

    pages = choose_pages()
    for page in pages:
        if not page.url:
            page.url = older_page_url(client)
    if args.only:
        words = [w.strip() for w in args.only.split(",") if w.strip()]
        needed = {p.admin for p in pages if any(w in p.label for w in words)}
        pages = [p for p in pages if any(w in p.label for w in words) or p.label in needed]
    total = Call.objects.count()
    say(f"{total:,} calls, {Campaign.objects.count()} campaigns; {len(pages)} pages")
    run(pages, client, args.requests, say)
    for page in pages:  # warm, as the timed requests were
        capture_queries(client, page)
    ok = report(pages)
    if args.json:
        Path(args.json).write_text(json.dumps(summary(pages, total)))
    explain_slow(pages)
    if not ok:
        print("\nSome pages miss the goal (p95 under 100 ms and faster than the admin).")
    return 0 if ok else 1


def summary(pages: list[Page], calls: int) -> dict[str, object]:
    return {
        "calls": calls,
        "pages": [
            {"label": p.label, "p50": p.p(50), "p95": p.p(95), "admin": p.admin} for p in pages
        ],
    }


def scale_database_url(url: str, calls: int, reuse: bool) -> str:
    """A database beside `url`'s for one scale: fresh, or with --reuse the one already there."""
    import psycopg

    base, _, name = url.rpartition("/")
    scaled = f"{name}_{calls}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        there = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [scaled]).fetchone()
        if there and not reuse:
            conn.execute(f'DROP DATABASE "{scaled}"')
        if not there or not reuse:
            conn.execute(f'CREATE DATABASE "{scaled}"')
    return f"{base}/{scaled}"


def compare_scales(scales: list[int], argv: list[str]) -> int:
    """Each scale in its own fresh database, by a run of this module; then their p95s."""
    rest: list[str] = []
    skip = False
    for arg in argv:  # every option but --calls and --json goes to each run
        if skip:
            skip = False
        elif arg in ("--calls", "--json"):
            skip = True
        elif not arg.startswith(("--calls=", "--json=")):
            rest.append(arg)
    results, failed = [], 0
    for calls in sorted(scales):
        out = Path(f"/tmp/pages_bench_{os.getpid()}_{calls}.json")
        url = scale_database_url(os.environ["DATABASE_URL"], calls, "--reuse" in rest)
        env = {**os.environ, "DATABASE_URL": url}
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], env=env, check=True)
        print(f"\n## {calls:,} calls", flush=True)
        command = [sys.executable, "-m", "bench.pages_bench", "--calls", str(calls)]
        run = subprocess.run([*command, "--json", str(out), *rest], env=env)
        failed += run.returncode != 0
        results.append(json.loads(out.read_text()))
        out.unlink()
    print_side_by_side(results)
    return 1 if failed else 0


def print_side_by_side(results: list[dict]) -> None:
    """p95 per page at each scale, and at each scale the ratio to its admin counterpart."""
    print("\n## p95 (ms) by scale, each measured side by side with the admin in its own run\n")
    heads = [f"{r['calls'] / 1e6:g}M calls" for r in results]
    print(f"{'page':<34} " + " ".join(f"{h:>11} {'vs admin':>9}" for h in heads))
    print("-" * (35 + 22 * len(heads)))
    for n, page in enumerate(results[0]["pages"]):
        cells = []
        for result in results:
            row = result["pages"][n]
            admin = next((p for p in result["pages"] if p["label"] == row["admin"]), None)
            ratio = f"{row['p95'] / admin['p95']:8.2f}x" if admin else " " * 9
            cells.append(f"{row['p95']:11.1f} {ratio}")
        print(f"{page['label']:<34} " + " ".join(cells))


if __name__ == "__main__":
    sys.exit(main())
