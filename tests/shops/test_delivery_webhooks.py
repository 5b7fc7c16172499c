"""A parcel's news from the shops: Shopify's fulfillments and WooCommerce's order.updated, sent
by the shop stand-ins over real HTTP, signed, counted once, never overwriting newer news, and
never mistaking robodash's own write-back for the parcel's fate."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from calls.models import Call, Order, OrderEvent, Store
from shops.forms import WooCommerceForm
from shops.inbox import take_in_waiting
from shops.intake import receive_order
from shops.models import ShopConnection
from shops.payloads import IncomingOrder
from shops.urls_public import WEBHOOK_TOPICS
from standins.server import StandIns
from tests.shops.test_outbox import deliver_until_done, press
from tests.support.webhooks import taken_in

pytestmark = pytest.mark.django_db(transaction=True)
SHOPIFY_SECRET, WOO_SECRET = "shpss_parcel_5a4b3c", "woo-parcel-9f8e7d"
WOO_KEY, WOO_KEY_SECRET = "ck_parcel", "cs_parcel"
SHOPIFY_ID = 820982911946154508  # the shop's own id of order #1001, as its webhooks send it
WOO = "http://127.0.0.1:8002"  # a shop's address the forms accept here (private ones allowed)
PKT = dt.timezone(dt.timedelta(hours=5))
MORNING, NOON = dt.datetime(2026, 12, 1, 9, tzinfo=PKT), dt.datetime(2026, 12, 1, 12, tzinfo=PKT)


@pytest.fixture
def stand_ins(store, live_server) -> Iterator[StandIns]:
    with StandIns() as stand_ins:
        stand_ins.control(
            "POST", "woocommerce", {"key": WOO_KEY, "secret": WOO_KEY_SECRET, "orders": ["727"]}
        )
        for kind, secret in (("shopify", SHOPIFY_SECRET), ("woocommerce", WOO_SECRET)):
            url = f"{live_server.url}/hooks/{kind}/{store.pk}/"
            stand_ins.register_webhook(kind, url, secret)
        yield stand_ins


@pytest.fixture
def shopify(store, stand_ins) -> ShopConnection:
    connection = ShopConnection(
        store=store,
        kind="shopify",
        shop_domain="kk.myshopify.com",
        admin_api_url=stand_ins.shopify_admin_url,
    )
    connection.set_secrets(access_token="shpat_parcel", webhook_secret=SHOPIFY_SECRET)
    connection.save()
    return connection


@pytest.fixture
def woocommerce(store, stand_ins) -> ShopConnection:
    connection = ShopConnection(store=store, kind="woocommerce", site_url=stand_ins.root_url)
    connection.set_secrets(
        consumer_key=WOO_KEY, consumer_secret=WOO_KEY_SECRET, webhook_secret=WOO_SECRET
    )
    connection.save()
    return connection


def shop_order(store, source: str, shop_id: str, name: str = "#1001") -> Order:
    """An order as the shop's order webhook stores it, with its queued call."""
    incoming = IncomingOrder(name, shop_id, "03001234567", Decimal("1500"), "Ayesha", True, "cod")
    received = receive_order(store, incoming, source)
    assert received.order is not None, received.message
    return received.order


@pytest.fixture
def order(store, shopify) -> Order:
    return shop_order(store, "shopify", str(SHOPIFY_ID))


def answered(sent: dict) -> tuple[int, str]:
    """The stand-in's delivery answered, and what became of it once the inbox took it in."""
    return sent["status"], taken_in(sent["answer"])[0]


def delivery_of(order: Order) -> tuple[str, dt.datetime | None, str]:
    order.refresh_from_db()
    return order.delivery, order.delivery_at, order.delivery_via


# --- Shopify ----------------------------------------------------------------------------------


def test_a_new_fulfillment_ships_the_order_at_the_shops_time_with_its_tracking(order, stand_ins):
    sent = stand_ins.send_fulfillment(SHOPIFY_ID, at=MORNING.isoformat(), tracking_number="TCS77")

    assert answered(sent) == (200, "recorded")
    assert delivery_of(order) == ("shipped", MORNING, "shopify")
    assert order.tracking == "TCS77"
    [event] = OrderEvent.objects.filter(order=order, kind="delivery")
    assert event.data["delivery"] == "shipped" and event.data["via"] == "shopify"


def test_a_shopify_fulfillment_brings_one_notice_call_however_often_it_is_sent(
    order, store, stand_ins
):
    Store.objects.filter(pk=store.pk).update(notify_on_shipped=103)
    for _ in range(2):
        stand_ins.send_fulfillment(SHOPIFY_ID, at=MORNING.isoformat(), tracking_number="TCS77")
    take_in_waiting()  # what the worker the deliveries woke does

    notices = Call.objects.filter(shop_order=order, purpose=Call.Purpose.NOTICE)
    assert [(c.notice_of, c.voice_id, c.text2) for c in notices] == [
        ("shipped", 103, order.order_id)
    ]


def test_a_fulfillment_update_says_where_the_parcel_is(store, shopify, stand_ins):
    statuses = ("delivered", "failure", "out_for_delivery", None)
    answers = {}
    for n, shipment_status in enumerate(statuses, start=1):
        shipped = shop_order(store, "shopify", str(SHOPIFY_ID + n), f"#200{n}")
        stand_ins.send_fulfillment(SHOPIFY_ID + n, at=MORNING.isoformat())
        update = {"shipment_status": shipment_status} if shipment_status else {}
        sent = stand_ins.send_fulfillment(
            SHOPIFY_ID + n, topic="fulfillments/update", at=NOON.isoformat(), **update
        )
        answers[shipment_status] = (taken_in(sent["answer"])[0], delivery_of(shipped)[0])

    assert answers == {
        "delivered": ("recorded", "delivered"),
        "failure": ("recorded", "returned"),
        "out_for_delivery": ("ignored", "shipped"),  # on its way still: already known
        None: ("ignored", "shipped"),  # an update that says nothing of the parcel
    }


def test_an_update_on_its_way_ships_an_order_whose_new_fulfillment_was_lost(order, stand_ins):
    fulfillment = {"id": 4451, "order_id": SHOPIFY_ID, "status": "success"}
    body = {**fulfillment, "shipment_status": "in_transit", "updated_at": MORNING.isoformat()}

    sent = stand_ins.send_raw("shopify", "fulfillments/update", json.dumps(body))

    assert answered(sent) == (200, "recorded")
    assert delivery_of(order) == ("shipped", MORNING, "shopify")


def test_the_same_webhook_delivered_twice_is_counted_once(order, stand_ins):
    stand_ins.send_fulfillment(SHOPIFY_ID, at=MORNING.isoformat())
    delivered = {"topic": "fulfillments/update", "shipment_status": "delivered"}

    first = stand_ins.send_fulfillment(SHOPIFY_ID, **delivered, delivery="d-delivered")
    again = stand_ins.send_fulfillment(SHOPIFY_ID, **delivered, delivery="d-delivered")

    assert (answered(first), answered(again)) == ((200, "recorded"), (200, "duplicate"))
    assert (
        OrderEvent.objects.filter(order=order, kind="delivery").count() == 2
    )  # shipped, delivered


def test_an_older_update_never_overwrites_a_newer_one(order, stand_ins):
    stand_ins.send_fulfillment(SHOPIFY_ID, at=MORNING.isoformat())
    update = {"topic": "fulfillments/update"}
    stand_ins.send_fulfillment(
        SHOPIFY_ID, **update, shipment_status="delivered", at=NOON.isoformat()
    )

    returned_earlier = stand_ins.send_fulfillment(
        SHOPIFY_ID, **update, shipment_status="failure", at=MORNING.isoformat()
    )
    in_transit_late = stand_ins.send_fulfillment(SHOPIFY_ID, **update, shipment_status="in_transit")

    assert answered(returned_earlier) == (200, "ignored")
    assert "not later than what is known" in taken_in(returned_earlier["answer"])[1]
    assert answered(in_transit_late) == (200, "ignored")
    assert delivery_of(order) == ("delivered", NOON, "shopify")


def test_a_fulfillment_of_an_order_the_store_does_not_have_changes_nothing(order, stand_ins):
    sent = stand_ins.send_fulfillment(555000111)

    assert answered(sent) == (200, "ignored")
    assert taken_in(sent["answer"])[1] == "order id 555000111 is not known here"
    assert delivery_of(order) == ("", None, "")
    assert not OrderEvent.objects.filter(kind__in=["delivery", "delivery_ignored"]).exists()


def test_a_body_robodash_cannot_read_is_refused_with_its_reason_and_changes_nothing(
    order, woocommerce, stand_ins
):
    unreadable = [
        ("shopify", "fulfillments/create", "{not json", "the body is not JSON"),
        ("shopify", "fulfillments/update", "[1, 2]", "the body is not a JSON object"),
        ("shopify", "fulfillments/create", '{"id": 1}', "the fulfillment has no order_id"),
        (
            "shopify",
            "fulfillments/update",
            f'{{"order_id": {SHOPIFY_ID}, "updated_at": "yesterday"}}',
            "updated_at 'yesterday' is not a time",
        ),
        (
            "shopify",
            "fulfillments/create",
            f'{{"order_id": {SHOPIFY_ID}, "created_at": "0001-01-01T00:00:00+05:00"}}',
            "created_at '0001-01-01T00:00:00+05:00' is not a time",
        ),
        ("woocommerce", "order.updated", '{"id": 727}', "the order has no status"),
        (
            "woocommerce",
            "order.updated",
            '{"id": 727, "status": "completed", "date_modified_gmt": "2026-02-31T10:00:00"}',
            "date_modified_gmt '2026-02-31T10:00:00' is not a time",
        ),
    ]
    for kind, topic, body, why in unreadable:
        sent = stand_ins.send_raw(kind, topic, body)

        assert (sent["status"], sent["answer"]) == (400, {"result": "refused", "message": why})
    assert delivery_of(order) == ("", None, "")


# --- WooCommerce ------------------------------------------------------------------------------


def test_a_woocommerce_status_says_what_became_of_the_parcel_by_default(
    store, woocommerce, stand_ins
):
    statuses = ("completed", "refunded", "rto-received", "wc-returned-to-vendor", "on-hold")
    answers = {}
    for n, status in enumerate(statuses, start=727):
        updated = shop_order(store, "woocommerce", str(n), name=str(n))
        sent = stand_ins.send_order_updated(n, status, at=NOON.isoformat())
        answers[status] = (taken_in(sent["answer"])[0], *delivery_of(updated))

    assert answers == {
        "completed": ("recorded", "delivered", NOON, "woocommerce"),
        "refunded": ("recorded", "returned", NOON, "woocommerce"),
        "rto-received": ("recorded", "returned", NOON, "woocommerce"),
        "wc-returned-to-vendor": ("recorded", "returned", NOON, "woocommerce"),
        "on-hold": ("ignored", "", None, ""),  # a status the mapping does not name: nothing
    }
    assert taken_in(stand_ins.records()["sent"][-1]["answer"])[1] == (
        "order 731: status on-hold says nothing of the parcel"
    )


def test_a_merchant_who_completes_orders_at_dispatch_maps_completed_to_shipped(
    store, woocommerce, stand_ins, monkeypatch
):
    woo_order = shop_order(store, "woocommerce", "727", name="727")
    monkeypatch.setenv("WC_CONSUMER_KEY", WOO_KEY)
    monkeypatch.setenv("WC_CONSUMER_SECRET", WOO_KEY_SECRET)
    monkeypatch.setenv("WC_WEBHOOK_SECRET", WOO_SECRET)
    call_command(
        "connect_shop", store.name, "woocommerce", "--site-url", stand_ins.root_url,
        "--woo-status", "completed=shipped", "--woo-status", "RTO=returned",
        stdout=io.StringIO(),
    )  # fmt: skip
    woocommerce.refresh_from_db()
    assert woocommerce.delivery_statuses == {
        "completed": "shipped",
        "refunded": "returned",
        "rto": "returned",
    }

    shipped = stand_ins.send_order_updated(727, "completed", at=MORNING.isoformat())
    delivered = stand_ins.send_order_updated(727, "delivered", at=NOON.isoformat())

    assert answered(shipped) == (200, "recorded") and answered(delivered) == (200, "ignored")
    assert delivery_of(woo_order) == ("shipped", MORNING, "woocommerce")


def test_a_cancelled_order_robodash_marked_failed_in_the_shop_is_not_a_return(
    store, woocommerce, stand_ins
):
    # This merchant's couriers' failed deliveries are `failed`, and robodash also sets `failed`
    # on the orders it cancels: the second must not read as the first.
    woocommerce.status_mapping = {"cancelled": "failed"}
    woocommerce.delivery_statuses = {"completed": "delivered", "failed": "returned"}
    woocommerce.save()
    cancelled = shop_order(store, "woocommerce", "727", name="727")
    press(cancelled, Call.Outcome.CANCELLED)

    deliver_until_done()  # the stand-in, its status set, sends order.updated at once

    [own] = stand_ins.records()["sent"]
    assert (own["topic"], own["status"]) == ("order.updated", 200)
    assert taken_in(own["answer"]) == (
        "ignored",
        "order 727: status failed is robodash's own write-back",
    )
    assert stand_ins.records()["woocommerce"]["727"]["status"] == "failed"
    assert delivery_of(cancelled) == ("", None, "")

    confirmed = shop_order(store, "woocommerce", "728", name="728")
    press(confirmed, Call.Outcome.CONFIRMED)
    sent = stand_ins.send_order_updated(728, "failed")
    assert answered(sent) == (200, "recorded") and delivery_of(confirmed)[0] == "returned"


# --- The mapping, the topics --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("completed = lost", "completed = lost: the state is one of shipped, delivered, returned"),
        ("completed", "completed is not status = state, e.g. completed = delivered."),
        ("a b = shipped", "a b = shipped is not status = state"),
        ("completed = shipped\ncompleted = delivered", "The status completed is given twice."),
    ],
)
@pytest.mark.django_db
def test_the_form_and_connect_shop_refuse_the_same_mapping_alike(store, text, error):
    form = WooCommerceForm({"site_url": WOO, "delivery_statuses": text})
    assert not form.is_valid()
    assert error in " ".join(form.errors["delivery_statuses"])

    pairs = [arg for line in text.splitlines() for arg in ("--woo-status", line)]
    with pytest.raises(CommandError) as refused:
        call_command("connect_shop", store.name, "woocommerce", "--site-url", WOO, *pairs)
    assert str(refused.value).startswith("--woo-status: ") and error in str(refused.value)
    assert not ShopConnection.objects.exists()


@pytest.mark.django_db
def test_the_integrations_page_shows_and_saves_the_mapping_and_lists_the_topics(
    client, store, admin_user
):
    addresses = {"shopify": {"shop_domain": "kk.myshopify.com"}, "woocommerce": {"site_url": WOO}}
    for kind, address in addresses.items():
        connection = ShopConnection(store=store, kind=kind, **address)
        connection.set_secrets(webhook_secret="x", consumer_key="x", consumer_secret="x")
        connection.save()
    woocommerce = ShopConnection.objects.get(kind="woocommerce")
    client.force_login(admin_user)
    page = f"/settings/stores/{store.pk}/integrations/"
    shown = client.get(page).content.decode()
    for topic in WEBHOOK_TOPICS["shopify"] + WEBHOOK_TOPICS["woocommerce"]:
        assert f"<code>{topic}</code>" in shown
    assert "completed = delivered\nrefunded = returned" in shown

    saved = client.post(
        page,
        {
            "kind": "woocommerce",
            "woocommerce-site_url": woocommerce.site_url,
            "woocommerce-cod_gateways": "cod",
            "woocommerce-delivery_statuses": "completed = shipped\nlost-in-transit = ignore",
        },
    )

    assert saved.status_code == 302
    woocommerce.refresh_from_db()
    assert woocommerce.delivery_statuses == {"completed": "shipped", "lost-in-transit": ""}


@pytest.mark.django_db
def test_connect_shop_names_every_topic_to_register(store, monkeypatch):
    monkeypatch.setenv("SHOPIFY_ACCESS_TOKEN", "shpat_x")
    monkeypatch.setenv("SHOPIFY_WEBHOOK_SECRET", "shpss_x")
    out = io.StringIO()
    call_command(
        "connect_shop", store.name, "shopify", "--shop-domain", "kk.myshopify.com", stdout=out
    )

    assert (
        "with one webhook for each of these topics: orders/create, orders/cancelled, "
        "fulfillments/create, fulfillments/update"
    ) in out.getvalue()


def test_every_topic_robodash_asks_for_is_one_it_acts_on(shopify, woocommerce, stand_ins):
    for kind, topics in WEBHOOK_TOPICS.items():
        for topic in topics:
            sent = stand_ins.send_raw(kind, topic, '{"id": 1, "order_id": 1, "status": "x"}')

            assert sent["status"] in (200, 400), sent
            assert "is not one robodash acts on" not in taken_in(sent["answer"])[1], sent
