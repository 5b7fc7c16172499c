"""The stale rule on the shops' paths: the placed time read from a Shopify or WooCommerce order and
from the API's `placed_at`, the arrival being when robodash received the webhook, and a stale
order held for a person instead of called."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.test import Client
from django.utils import timezone

from calls import actions
from calls.models import Call, Order, Store
from shops.models import ApiToken, ReceivedWebhook
from shops.payloads import shopify_order as read_shopify
from shops.payloads import woocommerce_order as read_woocommerce
from tests.shops.test_webhooks import (  # noqa: F401 - the connections are fixtures
    SHOPIFY_SECRET,
    outcome,
    post_shopify,
    post_woo,
    shopify,
    shopify_order,
    signed,
    woo_order,
    woocommerce,
)
from tests.support.webhooks import taken_in

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def holds_stale(store) -> Store:
    Store.objects.filter(pk=store.pk).update(stale_after_hours=48)
    store.refresh_from_db()
    return store


@pytest.mark.usefixtures("shopify")
def test_a_shopify_order_placed_three_days_ago_is_held_in_the_queue_and_not_called(
    client, holds_stale
):
    placed = (timezone.now() - dt.timedelta(days=3)).astimezone(dt.timezone(dt.timedelta(hours=5)))

    answer = post_shopify(client, holds_stale, shopify_order(created_at=placed.isoformat()))

    assert outcome(answer) == "held"
    assert "arrived 3 days after it was placed" in taken_in(answer.json())[1]
    order = Order.objects.get()
    assert order.placed_at == placed
    assert (order.status, order.followup) == ("held", "held")
    assert order.verdict_reasons == [{"rule": "stale", "hours": 72}]
    assert list(actions.due_followups()) == [order] and not Call.objects.exists()


@pytest.mark.usefixtures("shopify")
def test_a_webhook_taken_in_late_is_judged_by_when_robodash_received_it(client, holds_stale):
    now = timezone.now()
    body = shopify_order(created_at=(now - dt.timedelta(hours=49)).isoformat())
    answer = client.post(
        f"/hooks/shopify/{holds_stale.pk}/",
        data=body,
        content_type="application/json",
        headers={
            "X-Shopify-Topic": "orders/create",
            "X-Shopify-Webhook-Id": "d-late",
            "X-Shopify-Hmac-Sha256": signed(body, SHOPIFY_SECRET),
        },
    )
    # Received 47 hours after it was placed; the worker takes it in two hours later.
    ReceivedWebhook.objects.update(received_at=now - dt.timedelta(hours=2))

    assert taken_in(answer.json())[0] == "queued"
    order = Order.objects.get()
    assert (order.status, order.verdict) == ("waiting", "call")


@pytest.mark.usefixtures("woocommerce")
def test_a_woocommerce_order_is_placed_at_its_date_created_gmt(client, holds_stale):
    placed = timezone.now() - dt.timedelta(days=2, hours=1)
    body = woo_order(date_created_gmt=placed.replace(tzinfo=None).isoformat(timespec="seconds"))

    assert outcome(post_woo(client, holds_stale, body)) == "held"
    order = Order.objects.get()
    assert order.placed_at == placed.replace(microsecond=0)
    assert order.verdict_reasons == [{"rule": "stale", "hours": 49}]


def test_a_shops_created_time_that_is_no_time_leaves_the_order_never_stale():
    shopify_body = {
        "id": 1,
        "name": "#1",
        "total_price": "1500",
        "payment_gateway_names": ["cod"],
        "created_at": "last tuesday",
    }
    assert read_shopify(shopify_body, ["cod"]).placed_at is None
    assert read_shopify({**shopify_body, "created_at": None}, ["cod"]).placed_at is None
    woo = {"id": 7, "total": "10", "payment_method": "cod", "date_created_gmt": "2026-02-31T10:00"}
    assert read_woocommerce(woo, ["cod"]).placed_at is None
    woo["date_created_gmt"] = "2026-12-01T10:00:00"
    assert read_woocommerce(woo, ["cod"]).placed_at == dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC)


def post_api(store: Store, **fields: object):
    token = ApiToken.issue(store, "site")[1]
    return Client().post(
        "/api/v1/orders",
        data=json.dumps({"phone": "0300 1234567", "amount": "1500", **fields}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )


def test_the_apis_placed_at_holds_a_stale_order_and_a_future_one_is_called(holds_stale):
    long_ago = (timezone.now() - dt.timedelta(days=3)).isoformat(timespec="seconds")
    ahead = (timezone.now() + dt.timedelta(hours=1)).isoformat(timespec="seconds")

    stale = post_api(holds_stale, order_id="KK-1", placed_at=long_ago)
    skewed = post_api(holds_stale, order_id="KK-2", phone="0300 7654321", placed_at=ahead)

    assert stale.status_code == 201, stale.json()
    assert (stale.json()["status"], stale.json()["verdict_reasons"]) == (
        "held",
        [{"rule": "stale", "hours": 72}],
    )
    assert stale.json()["verdict_words"] == "arrived 3 days after it was placed"
    assert (skewed.status_code, skewed.json()["status"]) == (201, "waiting")


@pytest.mark.parametrize("placed_at", ["yesterday", "2026-12-01T10:00:00", "2026-02-31T10:00:00Z"])
def test_the_api_refuses_a_placed_at_that_names_no_instant(store, placed_at):
    answer = post_api(store, order_id="KK-1", placed_at=placed_at)

    assert answer.status_code == 400
    assert list(answer.json()["errors"]) == ["placed_at"]
    assert not Order.objects.exists()
