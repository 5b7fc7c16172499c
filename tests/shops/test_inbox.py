"""The shops' webhooks are answered as soon as they are stored, and taken in by a worker: in the
order each shop sent them, a cancellation that came first still withdrawing its order, a delivery
that fails tried again without holding up the rest, and nothing lost while no worker runs."""

from __future__ import annotations

import threading

import pytest
import requests
from django.db import OperationalError, connections
from django.test import Client

from calls.models import Call, Order
from robodash.celery import app
from shops import inbox
from shops.inbox import take_in_connection, take_in_waiting
from shops.models import EarlyCancellation, ReceivedWebhook
from tests.shops import test_webhooks
from tests.shops.test_webhooks import SHOPIFY_SECRET, shopify_order, signed
from tests.support.pages import text_of
from tests.support.pipeline import Pipeline, wait_for

pytestmark = pytest.mark.django_db(transaction=True)
shopify = test_webhooks.shopify  # the store's Shopify connection, a fixture
CANCELLED = {"cancelled_at": "2026-11-29T10:00:00+05:00", "cancel_reason": "customer"}


def send(client, store, body: bytes, *, delivery: str, topic: str = "orders/create"):
    """One signed Shopify delivery, answered; nothing takes it in until the test says so."""
    return client.post(
        f"/hooks/shopify/{store.pk}/",
        data=body,
        content_type="application/json",
        headers={
            "X-Shopify-Topic": topic,
            "X-Shopify-Webhook-Id": delivery,
            "X-Shopify-Hmac-Sha256": signed(body, SHOPIFY_SECRET),
        },
    )


def outcomes() -> list[tuple[str, str]]:
    return list(ReceivedWebhook.objects.order_by("id").values_list("delivery_id", "outcome"))


def test_a_webhook_is_answered_once_stored_and_its_order_made_when_the_inbox_takes_it_in(
    client, store, shopify
):
    answer = send(client, store, shopify_order(), delivery="d-1")

    assert answer.status_code == 200
    assert answer.json() == {
        "result": "accepted",
        "message": "delivery d-1 received: robodash takes it in next",
        "delivery": "d-1",
    }
    waiting = ReceivedWebhook.objects.get()
    assert waiting.processed_at is None and bytes(waiting.body) == shopify_order()
    assert not Order.objects.exists()

    assert take_in_waiting() == 1

    order = Order.objects.get()
    assert order.order_id == "#1001" and order.calls.get().state == Call.State.QUEUED
    assert order.arrived_at == waiting.received_at  # when it came, not when it was taken in
    waiting.refresh_from_db()
    assert (waiting.outcome, waiting.result) == ("queued", "order #1001 queued for its call")
    assert waiting.processed_at is not None and bytes(waiting.body) == b""  # the order keeps it
    assert take_in_waiting() == 0


def test_a_cancellation_sent_before_its_order_withdraws_the_order_when_it_comes(
    client, store, shopify
):
    send(client, store, shopify_order(**CANCELLED), delivery="d-1", topic="orders/cancelled")
    assert take_in_waiting() == 1
    assert outcomes() == [("d-1", "early_cancel")]

    send(client, store, shopify_order(), delivery="d-2")
    take_in_waiting()

    assert outcomes() == [("d-1", "early_cancel"), ("d-2", "withdrawn")]
    order = Order.objects.get()
    assert order.status == Order.Status.WITHDRAWN
    [call] = order.calls.all()
    assert (call.state, call.outcome) == (Call.State.FINAL, Call.Outcome.WITHDRAWN)
    assert EarlyCancellation.objects.filter(store=store, order_id="#1001").exists()


def test_a_shops_deliveries_are_taken_in_in_the_order_they_arrived(client, store, shopify):
    # Both waiting when the worker comes: the order first, then its cancellation.
    send(client, store, shopify_order(), delivery="d-1")
    send(client, store, shopify_order(**CANCELLED), delivery="d-2", topic="orders/cancelled")
    send(client, store, shopify_order(name="#1002", id=9), delivery="d-3")

    assert take_in_waiting() == 3

    assert outcomes() == [("d-1", "queued"), ("d-2", "withdrawn"), ("d-3", "queued")]
    assert not EarlyCancellation.objects.exists()


def test_what_needs_no_database_is_answered_at_once_and_never_waits(client, store, shopify):
    not_cod = send(
        client, store, shopify_order(payment_gateway_names=["card"]), delivery="d-1"
    ).json()
    other_topic = send(client, store, b"{}", delivery="d-2", topic="products/update").json()
    unreadable = send(client, store, b"{not json", delivery="d-3")

    assert not_cod["result"] == "not_cod" and other_topic["result"] == "ignored"
    assert unreadable.status_code == 400 and unreadable.json()["message"] == "the body is not JSON"
    assert not ReceivedWebhook.objects.filter(processed_at__isnull=True).exists()
    assert outcomes() == [("d-1", "not_cod"), ("d-2", "ignored"), ("d-3", "unreadable")]


def test_a_delivery_that_fails_is_tried_again_then_set_aside_without_holding_up_the_rest(
    client, store, shopify, monkeypatch
):
    send(client, store, shopify_order(), delivery="d-bad")
    send(client, store, shopify_order(name="#1002", id=9), delivery="d-next")
    act_on = inbox.act_on

    def fails_for_the_first(shop, news, **kwargs):  # type: ignore[no-untyped-def]
        if news.order is not None and news.order.order_id == "#1001":
            raise RuntimeError("a bug")
        return act_on(shop, news, **kwargs)

    monkeypatch.setattr(inbox, "act_on", fails_for_the_first)

    for attempt in range(1, inbox.MAX_ATTEMPTS):
        assert take_in_waiting() == 0  # the shop's next delivery waits behind it
        bad = ReceivedWebhook.objects.get(delivery_id="d-bad")
        assert (bad.attempts, bad.processed_at) == (attempt, None)
    assert take_in_waiting() == 2  # the fifth failure sets it aside; the next goes on

    bad.refresh_from_db()
    assert (bad.outcome, bad.attempts) == ("failed", inbox.MAX_ATTEMPTS)
    assert bad.result == "could not be taken in after 5 tries (RuntimeError)"
    assert bytes(bad.body) == shopify_order()  # kept for a person to look at
    assert list(Order.objects.values_list("order_id", flat=True)) == ["#1002"]


def test_a_connection_is_taken_in_by_one_worker_at_a_time(client, store, shopify):
    send(client, store, shopify_order(), delivery="d-1")
    held, release = threading.Event(), threading.Event()

    def another_worker() -> None:
        try:
            with connections["default"].cursor() as cursor:
                cursor.execute("SELECT pg_advisory_lock(%s, %s)", [inbox.INBOX_LOCK, shopify.pk])
                held.set()
                release.wait(10)
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [inbox.INBOX_LOCK, shopify.pk])
        finally:
            connections["default"].close()

    thread = threading.Thread(target=another_worker)
    thread.start()
    try:
        assert held.wait(10)
        assert take_in_connection(shopify.pk) == 0  # the other worker has it
        assert not Order.objects.exists()
    finally:
        release.set()
        thread.join(10)
    assert take_in_connection(shopify.pk) == 1


def test_a_webhook_the_database_cannot_store_is_answered_503_for_the_shop_to_send_again(
    store, shopify, monkeypatch
):
    def database_away(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OperationalError("connection refused")

    monkeypatch.setattr(ReceivedWebhook, "insert_once", database_away)

    answer = send(Client(raise_request_exception=False), store, shopify_order(), delivery="d-1")

    assert answer.status_code == 503 and answer["Retry-After"] == "5"


def test_orders_sent_while_no_worker_runs_are_each_called_once_when_one_starts(
    store, shopify, simulator, live_server
):
    session = requests.Session()
    for n in range(12):
        body = shopify_order(
            id=700 + n, name=f"#D{n}", shipping_address={"phone": f"0300 12345{n:02d}"}
        )
        answer = session.post(
            f"{live_server.url}/hooks/shopify/{store.pk}/",
            data=body,
            headers={
                "Content-Type": "application/json",
                "X-Shopify-Topic": "orders/create",
                "X-Shopify-Webhook-Id": f"down-{n}",
                "X-Shopify-Hmac-Sha256": signed(body, SHOPIFY_SECRET),
            },
            timeout=10,
        )
        assert (answer.status_code, answer.json()["result"]) == (200, "accepted")
    assert not Order.objects.exists() and ReceivedWebhook.objects.count() == 12
    # The wakes they sent are lost too (a flushed broker): beat's sweep must find them.
    app.control.purge()

    pipeline = Pipeline(base_url=simulator.base_url).start()
    try:
        wait_for(
            lambda: Call.objects.filter(state=Call.State.FINAL).count() == 12,
            timeout=90,
            what="the 12 orders to be taken in and called",
            describe=lambda: f": {outcomes()} {list(Call.objects.values('state'))}",
        )
    finally:
        pipeline.stop()

    assert {outcome for _, outcome in outcomes()} == {"queued"}
    stats = simulator.stats()
    assert stats["requests"]["calls"] == 12
    assert sorted(stats["calls_by_order"].values()) == [1] * 12
    assert Call.objects.filter(provider_call_id__isnull=False).count() == 12


def test_the_integrations_page_says_how_many_deliveries_wait_for_a_worker(
    client, store, shopify, admin_user
):
    for n in range(2):
        send(client, store, shopify_order(name=f"#W{n}", id=n), delivery=f"w-{n}")
    client.force_login(admin_user)
    page = f"/settings/stores/{store.pk}/integrations/"

    waiting = text_of(client.get(page))
    assert "2 deliveries waiting for a worker since" in waiting
    assert "orders/create: waiting for a worker" in waiting  # the last one received

    take_in_waiting()
    taken = text_of(client.get(page))
    assert "waiting for a worker" not in taken
    assert "orders/create: order #W1 queued for its call" in taken


def test_a_secret_rotated_here_takes_effect_at_once_though_connections_are_kept_a_moment(
    client, store, shopify
):
    assert send(client, store, shopify_order(), delivery="d-1").status_code == 200  # kept now
    shopify.set_secrets(webhook_secret="a-new-secret")
    shopify.save()

    old_secret = send(client, store, shopify_order(name="#1002", id=9), delivery="d-2")

    assert old_secret.status_code == 401
