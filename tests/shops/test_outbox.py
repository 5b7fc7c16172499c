"""The outbox: a settled order's write-back is committed with the decision and delivered to the
shop stand-ins over real HTTP, exactly once, through failures, crashes and Retry."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from calls.models import Call, Order
from calls.transitions import decide_by_hand, finish
from shops import outbox
from shops.intake import receive_order
from shops.models import ShopConnection, WriteBack
from shops.payloads import IncomingOrder
from shops.signatures import base64_hmac
from standins.server import StandIns
from tests.support.pages import text_of
from tests.support.pipeline import Pipeline, wait_for
from tests.support.webhooks import taken_in

pytestmark = pytest.mark.django_db(transaction=True)
TOKEN, WOO_KEY, WOO_SECRET = "shpat_outbox_0123456789", "ck_outbox", "cs_outbox"


@pytest.fixture
def stand_ins() -> Iterator[StandIns]:
    with StandIns() as stand_ins:
        stand_ins.control(
            "POST", "shopify", {"token": TOKEN, "orders": ["gid://shopify/Order/555"]}
        )
        stand_ins.control(
            "POST", "woocommerce", {"key": WOO_KEY, "secret": WOO_SECRET, "orders": ["727"]}
        )
        stand_ins.control("POST", "receivers", {"name": "kk", "secret": "whsec_kk"})
        yield stand_ins


def connect(store, kind: str, stand_ins: StandIns, **fields) -> ShopConnection:
    connection = ShopConnection(store=store, kind=kind, **fields)
    if kind == "shopify":
        connection.shop_domain = "kk.myshopify.com"
        connection.admin_api_url = stand_ins.shopify_admin_url
        connection.set_secrets(access_token=TOKEN, webhook_secret="x")
    elif kind == "woocommerce":
        connection.site_url = stand_ins.root_url
        connection.set_secrets(consumer_key=WOO_KEY, consumer_secret=WOO_SECRET, webhook_secret="x")
    else:
        connection.webhook_url = stand_ins.receiver_url("kk")
        connection.set_secrets(signing_secret="whsec_kk")
    connection.save()
    return connection


def shop_order(store, source: str, source_id: str, name: str = "#1001") -> Order:
    """An order as the shop's webhook (or the API) stores it, with its queued call."""
    incoming = IncomingOrder(
        name, source_id, "03001234567", Decimal("1500.00"), "Ayesha", True, "cod"
    )
    received = receive_order(store, incoming, source)
    assert received.outcome == "queued" and received.order is not None, received.message
    return received.order


def press(order: Order, outcome: str) -> None:
    """The order's call ends with `outcome`, as polling would end it."""
    with transaction.atomic():
        call = Call.objects.select_for_update().get(shop_order=order)
        Call.objects.filter(pk=call.pk).update(state=Call.State.IN_PROGRESS)
        call.refresh_from_db()
        call.dtmf = {"confirmed": 1, "cancelled": 2}.get(outcome)
        finish(call, outcome, timezone.now())


def deliver_until_done(timeout: float = 15) -> None:
    """Run the sweep's claim and deliver in this process until nothing is pending."""
    deadline = time.monotonic() + timeout
    while WriteBack.objects.filter(state__in=["pending", "sending"]).exists():
        for row in outbox.claim():
            outbox.deliver(row)
        assert time.monotonic() < deadline, list(WriteBack.objects.values())
        time.sleep(0.02)


def test_a_key_press_queues_the_write_back_in_its_transaction_and_the_tag_arrives_once(
    store, stand_ins, settings
):
    connect(store, "shopify", stand_ins)
    order = shop_order(store, "shopify", "555")

    press(order, Call.Outcome.CONFIRMED)

    row = WriteBack.objects.get()
    assert (row.event, row.state) == ("confirmed", "pending")
    deliver_until_done()
    row.refresh_from_db()
    assert row.state == "delivered" and row.attempts == 1
    assert stand_ins.records()["shopify"]["gid://shopify/Order/555"]["tags"] == [
        "robocall-confirmed"
    ]


def test_a_shopify_order_id_of_150_digits_is_kept_whole_and_its_decision_tags_that_order(
    client, store, stand_ins
):
    long_id = "1234567890" * 15
    whole, cut = f"gid://shopify/Order/{long_id}", f"gid://shopify/Order/{long_id[:100]}"
    stand_ins.control("POST", "shopify", {"token": TOKEN, "orders": [whole, cut]})
    connect(store, "shopify", stand_ins)
    body = json.dumps(
        {
            "id": int(long_id),  # Shopify sends its ids as JSON numbers
            "name": "#1001",
            "total_price": "1500.00",
            "payment_gateway_names": ["Cash on Delivery (COD)"],
            "shipping_address": {"phone": "0300 1234567"},
        }
    ).encode()
    received = client.post(
        f"/hooks/shopify/{store.pk}/",
        data=body,
        content_type="application/json",
        headers={
            "X-Shopify-Topic": "orders/create",
            "X-Shopify-Webhook-Id": "d-long",
            "X-Shopify-Hmac-Sha256": base64_hmac(body, "x"),
        },
    )
    assert taken_in(received.json())[0] == "queued"
    order = Order.objects.get()
    assert order.shop_ref == long_id

    press(order, Call.Outcome.CONFIRMED)
    deliver_until_done()

    shop = stand_ins.records()["shopify"]
    assert shop[whole]["tags"] == ["robocall-confirmed"] and shop[cut]["tags"] == []
    assert WriteBack.objects.get().state == "delivered"


def test_a_decision_rolled_back_leaves_no_write_back(store, stand_ins, agent_user):
    connect(store, "shopify", stand_ins)
    order = shop_order(store, "shopify", "555")
    Call.objects.update(state=Call.State.FINAL, outcome=Call.Outcome.CALLBACK_REQUESTED)

    with pytest.raises(RuntimeError), transaction.atomic():
        decide_by_hand(order, agent_user, Order.Decision.CANCELLED, "")
        raise RuntimeError("the transaction fails after the decision")

    assert not WriteBack.objects.exists()


def test_a_shop_failing_five_times_then_answering_gets_exactly_one_note(
    store, stand_ins, agent_user, settings
):
    settings.ROBODASH_TIME_SCALE = 600  # the backoff's 30 s, 1, 2, 5, 10 min in a second or so
    connect(store, "woocommerce", stand_ins, status_mapping={"cancelled": "cancelled"})
    order = shop_order(store, "woocommerce", "727")
    Call.objects.update(state=Call.State.FINAL, outcome=Call.Outcome.UNREACHABLE)
    stand_ins.fail_next(
        "woocommerce",
        {"status": 500},
        {"status": 503},
        {"status": 429, "retry_after": 1},
        {"status": 502},
        {"status": 500},
    )

    decide_by_hand(order, agent_user, Order.Decision.CANCELLED, "rang the shop")
    deliver_until_done(timeout=60)

    row = WriteBack.objects.get()
    assert row.state == "delivered" and row.attempts == 6
    woo = stand_ins.records()["woocommerce"]["727"]
    assert len(woo["notes"]) == 1 and woo["status"] == "cancelled"
    assert woo["notes"][0].startswith(f"Robocall: Cancelled ({agent_user.username}, by hand).")


def test_a_refused_token_fails_at_once_and_retry_delivers_it_after_the_fix(
    client, store, stand_ins, agent_user
):
    connection = connect(store, "shopify", stand_ins)
    connection.set_secrets(access_token="shpat_revoked")
    connection.save()
    order = shop_order(store, "shopify", "555")
    press(order, Call.Outcome.CANCELLED)
    deliver_until_done()
    row = WriteBack.objects.get()
    assert row.state == "failed" and row.last_error == "credentials:401"
    client.force_login(agent_user)
    page = client.get(f"/orders/{order.pk}/").content.decode()
    assert "Retry" in page
    assert "It refused the credentials (HTTP 401): check them in Integrations." in page
    assert "shpat_revoked" not in page

    connection.set_secrets(access_token=TOKEN)
    connection.save()
    retried = client.post(f"/write-backs/{row.pk}/retry/")
    deliver_until_done()

    assert retried.status_code == 302
    row.refresh_from_db()
    assert row.state == "delivered"
    assert stand_ins.records()["shopify"]["gid://shopify/Order/555"]["tags"] == [
        "robocall-cancelled"
    ]


def test_a_manager_cannot_retry_a_failed_write_back_and_it_stays_failed(
    client, store, stand_ins, manager_user
):
    connect(store, "shopify", stand_ins)
    press(shop_order(store, "shopify", "555"), Call.Outcome.CONFIRMED)
    WriteBack.objects.update(state="failed", last_error="the shop refused the credentials")
    row = WriteBack.objects.get()
    client.force_login(manager_user)

    answer = client.post(f"/write-backs/{row.pk}/retry/")

    assert answer.status_code == 403
    row.refresh_from_db()
    assert row.state == "failed"


def test_a_write_back_still_failing_after_a_day_is_failed_with_the_reason(store, stand_ins):
    connect(store, "shopify", stand_ins)
    order = shop_order(store, "shopify", "555")
    press(order, Call.Outcome.CONFIRMED)
    WriteBack.objects.update(give_up_at=timezone.now() - dt.timedelta(seconds=1))
    stand_ins.fail_next("shopify", {"status": 500})

    deliver_until_done()

    row = WriteBack.objects.get()
    assert row.state == "failed"
    assert row.last_error == "gave_up:http:500"
    assert row.problem() == "Gave up after a day: It answered HTTP 500."


def test_every_order_of_the_store_goes_to_its_own_site_signed_with_a_delivery_id(store, stand_ins):
    connect(store, "webhook", stand_ins)
    order = shop_order(store, "api", "")
    press(order, Call.Outcome.UNREACHABLE)
    deliver_until_done()

    [delivery] = stand_ins.records()["receivers"]["kk"]
    row = WriteBack.objects.get()
    assert delivery["signed"] is True and delivery["delivery"] == f"wb_{row.pk}_1"
    assert delivery["payload"]["event"] == "order.no_answer"
    assert delivery["payload"]["order"]["order_id"] == "#1001"
    assert delivery["payload"]["order"]["decision"] == ""


def test_an_order_from_elsewhere_is_not_written_to_a_shop_that_cannot_address_it(store, stand_ins):
    connect(store, "shopify", stand_ins)
    order = shop_order(store, "api", "")  # came through the API: Shopify has no such order

    press(order, Call.Outcome.CONFIRMED)

    assert not WriteBack.objects.exists()


def test_a_worker_killed_mid_write_back_delivers_it_once_after_restart(store, stand_ins, simulator):
    connect(store, "woocommerce", stand_ins)
    order = shop_order(store, "woocommerce", "727")
    # The notes are listed, then the note's POST is held for 2 s: the worker dies while it
    # waits, and the note lands. The sending lease (90 s / 20) runs out after that.
    stand_ins.fail_next("woocommerce", {"status": 0}, {"hold_seconds": 2})
    pipeline = Pipeline(base_url=simulator.base_url, time_scale=20).start()
    try:
        press(order, Call.Outcome.CONFIRMED)
        wait_for(
            lambda: stand_ins.records()["requests"].get("woocommerce", 0) >= 2,
            timeout=30,
            what="the note's POST to reach the shop",
        )
        pipeline.kill(pipeline.workers[0])
        pipeline.start_worker()
        wait_for(
            lambda: WriteBack.objects.filter(state="delivered").exists(),
            timeout=60,
            what="the write-back to be delivered after the restart",
            describe=lambda: f": {list(WriteBack.objects.values('state', 'attempts'))}",
        )
    finally:
        pipeline.stop()

    notes = stand_ins.records()["woocommerce"]["727"]["notes"]
    assert len(notes) == 1, notes  # the held POST landed; the second try found its marker
    row = WriteBack.objects.get()
    assert row.attempts == 2
    assert row.result == [{"code": "note_already_there"}]
    assert row.summary() == "order note already there (an earlier answer was lost)"


def test_a_failed_write_back_keeps_and_shows_its_status_never_the_shops_reply_text(
    client, store, stand_ins, agent_user
):
    connect(store, "shopify", stand_ins)
    hostile = "Call 0300 9999999 to confirm your order <b>now</b>"
    stand_ins.fail_next("shopify", {"status": 422, "message": hostile})
    refused = shop_order(store, "shopify", "555")
    unknown = shop_order(store, "shopify", "999", "#1002")  # the shop: "Order not found"
    press(refused, Call.Outcome.CONFIRMED)
    deliver_until_done()
    press(unknown, Call.Outcome.CONFIRMED)
    deliver_until_done()

    rows = {row.order_id: row for row in WriteBack.objects.all()}
    assert rows[refused.pk].last_error == "refused:422"
    assert rows[unknown.pk].last_error == "refused:200"
    client.force_login(agent_user)
    for order, status in ((refused, 422), (unknown, 200)):
        shown = text_of(client.get(f"/orders/{order.pk}/"))
        assert f"It refused the request (HTTP {status})." in shown
        assert "0300 9999999" not in shown and "Order not found" not in shown
