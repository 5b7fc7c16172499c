"""The store's rules on the shops' paths: a webhook's and the API's orders judged like the form's,
a skipped order told to the Shopify stand-in (its tag robocall-skipped) and the merchant's
server, a held one told nothing until decided, and a shop's cancel withdrawing either."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from calls import actions
from calls.block_list import block_phone
from calls.models import Call, Campaign, Order, Store
from calls.transitions import decide_by_hand
from shops.inbox import take_in_waiting
from shops.intake import receive_order
from shops.models import ApiToken, WriteBack
from shops.payloads import IncomingOrder
from shops.signatures import base64_hmac
from standins.server import StandIns
from tests.shops.test_outbox import TOKEN, WOO_KEY, WOO_SECRET, connect, deliver_until_done
from tests.support.webhooks import taken_in

pytestmark = pytest.mark.django_db(transaction=True)
SHOP_ORDER_ID = 555  # the stand-in's gid://shopify/Order/555


@pytest.fixture
def stand_ins() -> Iterator[StandIns]:
    with StandIns() as stand_ins:
        stand_ins.control(
            "POST", "shopify", {"token": TOKEN, "orders": [f"gid://shopify/Order/{SHOP_ORDER_ID}"]}
        )
        stand_ins.control("POST", "receivers", {"name": "kk", "secret": "whsec_kk"})
        yield stand_ins


def shopify_body(amount: str = "300.00", **changes: object) -> bytes:
    order = {
        "id": SHOP_ORDER_ID,
        "name": "#1001",
        "total_price": amount,
        "payment_gateway_names": ["Cash on Delivery (COD)"],
        "shipping_address": {"phone": "0300 1234567", "name": "Ayesha Khan"},
        "created_at": "2026-12-01T10:00:00+05:00",
    }
    return json.dumps(order | changes).encode()


def post_shopify(client, store, body: bytes, *, topic="orders/create", delivery="d-1"):
    """Sent, answered, and taken in by the inbox (as its worker would)."""
    response = client.post(
        f"/hooks/shopify/{store.pk}/",
        data=body,
        content_type="application/json",
        headers={
            "X-Shopify-Topic": topic,
            "X-Shopify-Webhook-Id": delivery,
            "X-Shopify-Hmac-Sha256": base64_hmac(body, "x"),  # connect()'s webhook secret
        },
    )
    take_in_waiting()
    return response


def test_a_webhook_order_below_the_minimum_is_skipped_and_the_shopify_order_tagged(
    client, store, stand_ins
):
    Store.objects.filter(pk=store.pk).update(call_min_amount=Decimal(1000))
    connect(store, "shopify", stand_ins)

    answer = post_shopify(client, store, shopify_body("300.00"))

    assert answer.status_code == 200 and taken_in(answer.json())[0] == "skipped"
    assert "below Rs 1,000.00" in taken_in(answer.json())[1]
    order = Order.objects.get()
    assert (order.status, order.verdict) == ("skipped", "skip") and not Call.objects.exists()
    deliver_until_done()
    row = WriteBack.objects.get()
    assert (row.event, row.state) == ("skipped", "delivered")
    assert stand_ins.records()["shopify"]["gid://shopify/Order/555"]["tags"] == ["robocall-skipped"]


def test_a_skipped_order_later_confirmed_by_hand_swaps_its_tag(
    client, store, stand_ins, agent_user
):
    Store.objects.filter(pk=store.pk).update(call_min_amount=Decimal(1000))
    connect(store, "shopify", stand_ins)
    post_shopify(client, store, shopify_body("300.00"))
    deliver_until_done()

    decide_by_hand(Order.objects.get(), agent_user, Order.Decision.CONFIRMED, "rang them")
    deliver_until_done()

    assert stand_ins.records()["shopify"]["gid://shopify/Order/555"]["tags"] == [
        "robocall-confirmed"
    ]
    assert Order.objects.get().verdict == "skip"  # kept: it says what the rules said


def test_a_held_order_is_told_nothing_until_a_person_decides_it(client, store, stand_ins):
    connect(store, "shopify", stand_ins)
    connect(store, "webhook", stand_ins)
    block_phone(store, "03001234567", "fake orders")

    answer = post_shopify(client, store, shopify_body("1500.00"))

    assert taken_in(answer.json())[0] == "held"
    order = Order.objects.get()
    assert (order.status, order.followup) == ("held", "held")
    assert list(actions.due_followups()) == [order] and not Call.objects.exists()
    assert not WriteBack.objects.exists()


def test_the_merchants_server_hears_order_skipped_with_the_rules_codes(store, stand_ins):
    Store.objects.filter(pk=store.pk).update(call_min_amount=Decimal(1000))
    connect(store, "webhook", stand_ins)
    token = ApiToken.issue(store, "site")[1]

    created = Client().post(
        "/api/v1/orders",
        data={"order_id": "KK-1", "phone": "0300 1234567", "amount": "300"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )

    assert created.status_code == 201
    body = created.json()
    assert (body["status"], body["verdict"], body["calls"]) == ("skipped", "skip", [])
    assert body["verdict_reasons"] == [{"rule": "below_min", "min": "1000.00"}]
    assert body["verdict_words"] == "below Rs 1,000.00"
    deliver_until_done()
    [sent] = stand_ins.records()["receivers"]["kk"]
    assert sent["payload"]["event"] == "order.skipped"
    assert sent["payload"]["order"]["verdict_reasons"] == [{"rule": "below_min", "min": "1000.00"}]
    assert sent["payload"]["order"]["decision"] == ""


@pytest.mark.parametrize("rule", ["skip", "hold"])
def test_a_shop_cancelling_a_skipped_or_held_order_withdraws_it(client, store, stand_ins, rule):
    if rule == "skip":
        Store.objects.filter(pk=store.pk).update(call_min_amount=Decimal(1000))
    else:
        block_phone(store, "03001234567", "fake orders")
    Store.objects.filter(pk=store.pk).update(notify_on_cancelled=77)
    connect(store, "shopify", stand_ins)
    post_shopify(client, store, shopify_body("300.00"))

    cancelled = post_shopify(
        client,
        store,
        shopify_body("300.00", cancelled_at=timezone.now().isoformat(), cancel_reason="customer"),
        topic="orders/cancelled",
        delivery="d-2",
    )

    assert taken_in(cancelled.json())[0] == "withdrawn"
    order = Order.objects.get()
    assert (order.status, order.followup, order.verdict) == ("withdrawn", "", rule)
    assert not actions.due_followups().exists()
    assert not Call.objects.exists()  # not even a cancelled notice: robodash never rang them


def test_a_skipped_woocommerce_order_gets_a_note_saying_why_and_the_mapped_status(store, stand_ins):
    woo = {"key": WOO_KEY, "secret": WOO_SECRET, "orders": ["727"]}
    stand_ins.control("POST", "woocommerce", woo)
    Store.objects.filter(pk=store.pk).update(trust_after=1)
    connect(store, "woocommerce", stand_ins, status_mapping={"skipped": "processing"})
    past = Order.objects.create(
        store=store,
        campaign=Campaign.objects.create(store=store, name="Past"),
        order_id="#900",
        phone="923001234567",
        amount=Decimal(900),
        voice_id=102,
        delivery=Order.Delivery.DELIVERED,
        delivery_at=timezone.now(),
    )

    received = receive_order(
        store,
        IncomingOrder("#1001", "727", "03001234567", Decimal("1500.00"), "Ayesha", True, "cod"),
        "woocommerce",
    )
    deliver_until_done()

    assert received.outcome == "skipped" and past.phone == received.order.phone
    woo = stand_ins.records()["woocommerce"]["727"]
    assert woo["status"] == "processing"
    [note] = woo["notes"]
    assert note.startswith(
        "Robocall: Not called, skipped by the store's rules "
        "(trusted: 1 delivered, none returned). [robodash:wb"
    )
