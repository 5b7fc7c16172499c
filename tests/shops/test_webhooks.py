"""Order webhooks from Shopify and WooCommerce: signed or refused, each delivery once, each order
called at most once, nothing the shop sent silently dropped."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from calls.models import Call, Order
from shops.inbox import take_in_waiting
from shops.models import ReceivedWebhook, ShopConnection
from tests.support.pages import text_of
from tests.support.webhooks import taken_in

pytestmark = pytest.mark.django_db(transaction=True)
SHOPIFY_SECRET = "shpss_5a4b3c2d1e0f"
WOO_SECRET = "woo-secret-9f8e7d"


def signed(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


@pytest.fixture
def shopify(store) -> ShopConnection:
    connection = ShopConnection(store=store, kind="shopify", shop_domain="kk.myshopify.com")
    connection.set_secrets(access_token="shpat_x", webhook_secret=SHOPIFY_SECRET)
    connection.save()
    return connection


@pytest.fixture
def woocommerce(store) -> ShopConnection:
    connection = ShopConnection(store=store, kind="woocommerce", site_url="https://kk.example")
    connection.set_secrets(consumer_key="ck", consumer_secret="cs", webhook_secret=WOO_SECRET)
    connection.save()
    return connection


def shopify_order(**changes) -> bytes:
    order = {
        "id": 820982911946154508,
        "name": "#1001",
        "total_price": "1500.00",
        "payment_gateway_names": ["Cash on Delivery (COD)"],
        "shipping_address": {"phone": "0300 1234567", "name": "Ayesha Khan"},
    }
    return json.dumps(order | changes).encode()


def taken_in_after(response):
    take_in_waiting()
    return response


def outcome(response) -> str:
    """What became of the delivery: its answer's, or the inbox's once it has taken it in."""
    return taken_in(response.json())[0]


def message(response) -> str:
    return taken_in(response.json())[1]


def post_shopify(client, store, body: bytes, *, topic="orders/create", delivery="d-1", sig=None):
    """The webhook sent, answered, and taken in by the inbox (as a worker would)."""
    return taken_in_after(
        client.post(
            f"/hooks/shopify/{store.pk}/",
            data=body,
            content_type="application/json",
            headers={
                "X-Shopify-Topic": topic,
                "X-Shopify-Webhook-Id": delivery,
                "X-Shopify-Hmac-Sha256": signed(body, SHOPIFY_SECRET) if sig is None else sig,
            },
        )
    )


def test_a_signed_cod_order_becomes_an_order_and_one_queued_call(client, store, shopify):
    response = post_shopify(client, store, shopify_order())

    assert response.status_code == 200 and outcome(response) == "queued"
    order = Order.objects.get(store=store, order_id="#1001")
    assert (order.source, order.phone, order.amount) == ("shopify", "923001234567", 1500)
    assert order.customer_name == "Ayesha Khan" and order.campaign.name == "Shopify orders"
    [call] = Call.objects.filter(shop_order=order)
    assert call.state == Call.State.QUEUED and call.text1 == store.name
    last = shopify.last_received()
    assert last is not None and last.topic == "orders/create"
    assert last.result.startswith("order #1001 queued")


@pytest.mark.parametrize(
    "signature",
    [
        "",
        "bm90IGEgc2lnbmF0dXJl",
        signed(shopify_order(), "another-secret"),
        signed(shopify_order(total_price="1500.01"), SHOPIFY_SECRET),  # the body changed
    ],
    ids=["missing", "garbage", "other-secret", "one-byte-changed"],
)
def test_a_bad_or_missing_signature_is_401_and_stores_nothing(client, store, shopify, signature):
    response = post_shopify(client, store, shopify_order(), sig=signature)

    assert response.status_code == 401
    assert not Order.objects.exists() and not ReceivedWebhook.objects.exists()


def test_the_same_delivery_three_times_is_one_order_and_one_call(client, store, shopify):
    answers = [outcome(post_shopify(client, store, shopify_order())) for _ in range(3)]

    assert answers == ["queued", "duplicate", "duplicate"]
    assert Order.objects.count() == 1 and Call.objects.count() == 1


def test_the_same_order_in_a_new_delivery_is_known_and_not_called_again(client, store, shopify):
    post_shopify(client, store, shopify_order(), delivery="d-1")
    again = post_shopify(client, store, shopify_order(), delivery="d-2")

    assert again.status_code == 200 and outcome(again) == "known"
    assert Call.objects.count() == 1


def test_an_order_sent_again_is_known_as_the_order_stored_first_in_any_language(store):
    from decimal import Decimal

    from django.utils import translation

    from shops.intake import receive_order
    from shops.payloads import IncomingOrder

    first = IncomingOrder("#3003", "88", "03001234567", Decimal("900"), "Sana", True, "cod")
    again = IncomingOrder("#3003", "89", "03009876543", Decimal("950"), "Sana", True, "cod")
    with translation.override("ur"):
        stored = receive_order(store, first, "shopify")
        repeated = receive_order(store, again, "shopify")

    assert (stored.outcome, repeated.outcome) == ("queued", "known")
    assert repeated.order == stored.order
    assert Call.objects.filter(order_id="#3003").count() == 1


def test_an_order_not_paid_cash_on_delivery_is_acknowledged_and_not_called(client, store, shopify):
    body = shopify_order(payment_gateway_names=["shopify_payments"])
    response = post_shopify(client, store, body)

    assert response.status_code == 200 and outcome(response) == "not_cod"
    assert not Order.objects.exists()
    assert ReceivedWebhook.objects.get().result.startswith("not cash on delivery")


def test_an_order_whose_phone_is_not_a_mobile_is_kept_as_rejected_with_the_reason(
    client, store, shopify
):
    body = shopify_order(shipping_address={"phone": "021 3456 7890"})
    response = post_shopify(client, store, body)

    assert response.status_code == 200 and outcome(response) == "rejected"
    order = Order.objects.get(order_id="#1001")
    assert order.status == Order.Status.REJECTED
    assert "is a landline, not a mobile number" in order.rejected_reason
    assert not Call.objects.exists()


def test_a_cancelled_order_is_withdrawn_while_its_call_waits(client, store, shopify):
    post_shopify(client, store, shopify_order(), delivery="d-1")
    body = shopify_order(cancelled_at="2026-11-29T10:00:00+05:00", cancel_reason="customer")
    cancelled = post_shopify(client, store, body, topic="orders/cancelled", delivery="d-2")

    assert outcome(cancelled) == "withdrawn"
    call = Call.objects.get()
    assert (call.state, call.outcome) == (Call.State.FINAL, Call.Outcome.WITHDRAWN)
    assert Order.objects.get().status == Order.Status.WITHDRAWN


def test_a_signed_new_order_replayed_under_the_cancelled_topic_does_not_withdraw_its_call(
    client, store, shopify
):
    # The topic header is not signed: anyone who saw the signed orders/create can resend its
    # body, under a new delivery id, with X-Shopify-Topic: orders/cancelled.
    post_shopify(client, store, shopify_order(), delivery="d-1")
    replayed = post_shopify(
        client, store, shopify_order(), topic="orders/cancelled", delivery="d-replay"
    )

    assert replayed.status_code == 200 and outcome(replayed) == "ignored"
    assert "not cancelled in the body" in message(replayed)
    assert Call.objects.get().state == Call.State.QUEUED
    assert Order.objects.get().status == Order.Status.WAITING


def post_woo_deleted(client, store, body: bytes, *, delivery: str):
    return taken_in_after(
        client.post(
            f"/hooks/woocommerce/{store.pk}/",
            data=body,
            content_type="application/json",
            headers={
                "X-WC-Webhook-Topic": "order.deleted",
                "X-WC-Webhook-Delivery-ID": delivery,
                "X-WC-Webhook-Signature": signed(body, WOO_SECRET),
            },
        )
    )


def test_a_woocommerce_order_is_withdrawn_by_a_deletion_not_by_its_new_order_replayed(
    client, store, woocommerce
):
    post_woo(client, store, woo_order(number="727"), delivery="1")
    replayed = post_woo_deleted(client, store, woo_order(number="727"), delivery="2")
    assert outcome(replayed) == "ignored"
    assert Call.objects.get().state == Call.State.QUEUED

    # What WooCommerce sends when an order is deleted: the order's id alone.
    deleted = post_woo_deleted(client, store, json.dumps({"id": 727}).encode(), delivery="3")

    assert outcome(deleted) == "withdrawn"
    assert Order.objects.get().status == Order.Status.WITHDRAWN


def test_a_store_without_that_shop_connected_is_404(client, store):
    assert post_shopify(client, store, shopify_order()).status_code == 404


def woo_order(**changes) -> bytes:
    order = {
        "id": 727,
        "number": "1001",
        "total": "2450.50",
        "payment_method": "cod",
        "billing": {"first_name": "Bilal", "last_name": "Ahmed", "phone": "03011234568"},
    }
    return json.dumps(order | changes).encode()


def post_woo(client, store, body: bytes, *, delivery="1", sig=None):
    return taken_in_after(
        client.post(
            f"/hooks/woocommerce/{store.pk}/",
            data=body,
            content_type="application/json",
            headers={
                "X-WC-Webhook-Topic": "order.created",
                "X-WC-Webhook-Delivery-ID": delivery,
                "X-WC-Webhook-Signature": signed(body, WOO_SECRET) if sig is None else sig,
            },
        )
    )


def test_woocommerce_pings_an_unsigned_form_when_the_webhook_is_saved(client, store, woocommerce):
    response = client.post(f"/hooks/woocommerce/{store.pk}/", data={"webhook_id": "12"})

    assert response.status_code == 200 and outcome(response) == "ping"
    assert not Order.objects.exists()


def test_200_unsigned_pings_are_counted_on_the_connection_and_store_no_row(
    client, store, woocommerce, admin_user
):
    # Anyone can send a ping: each used to leave a row, and the last one became the "last
    # webhook received" on the Integrations page.
    for n in range(200):
        answer = client.post(f"/hooks/woocommerce/{store.pk}/", data={"webhook_id": str(n)})
        assert answer.status_code == 200

    woocommerce.refresh_from_db()
    assert woocommerce.pings_received == 200 and woocommerce.last_ping_at is not None
    assert not ReceivedWebhook.objects.exists() and woocommerce.last_received() is None
    client.force_login(admin_user)
    page = text_of(client.get(f"/settings/stores/{store.pk}/integrations/"))
    assert "200 unsigned pings, the last" in page


def test_a_signed_woocommerce_cod_order_is_called_once_however_often_it_comes(
    client, store, woocommerce
):
    first = post_woo(client, store, woo_order(), delivery="1")
    again = post_woo(client, store, woo_order(), delivery="1")
    resent = post_woo(client, store, woo_order(), delivery="2")

    assert [outcome(r) for r in (first, again, resent)] == ["queued", "duplicate", "known"]
    order = Order.objects.get()
    assert (order.order_id, order.source, order.customer_name) == (
        "1001",
        "woocommerce",
        "Bilal Ahmed",
    )
    assert Call.objects.count() == 1


def test_an_unsigned_woocommerce_order_is_401(client, store, woocommerce):
    assert post_woo(client, store, woo_order(), sig="").status_code == 401
    assert not Order.objects.exists()


def test_the_order_page_says_why_a_rejected_order_was_not_called(
    client, store, shopify, admin_user
):
    post_shopify(client, store, shopify_order(shipping_address={"phone": "+44 20 7946 0958"}))
    order = Order.objects.get()
    client.force_login(admin_user)

    page = client.get(f"/orders/{order.pk}/").content.decode()

    assert "Not called: phone" in page and "Rejected" in page


def test_the_same_order_arriving_twice_at_once_is_stored_and_called_once(store):
    # Two deliveries (say, a shop's retry racing the first) on two connections at the same time:
    # single orders do not wait for each other's intake lock, so the unique index decides.
    import threading
    from decimal import Decimal

    from django.db import connection

    from shops.intake import receive_order
    from shops.payloads import IncomingOrder

    incoming = IncomingOrder("#2002", "77", "03001234567", Decimal("900"), "Sana", True, "cod")
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def deliver() -> None:
        try:
            start.wait(5)
            outcomes.append(receive_order(store, incoming, "shopify").outcome)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(outcomes) == ["known", "queued"]
    assert Order.objects.filter(order_id="#2002").count() == 1
    assert Call.objects.filter(order_id="#2002").count() == 1
