"""The outbox sends the current truth: one versioned write-back per order and shop, a change of
decision told as one (with what it was), only the latest of quick changes sent, a change made
while a write-back is being sent sent again after it; against the shop stand-ins over real HTTP
and real Postgres.

Until the order desk lands, a decision is changed here as the desk will change it: the order's
row, then queue_write_backs, in one transaction."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from django.db import connections

from calls.models import Call, Order, User
from calls.transitions import decide_by_hand
from shops import outbox
from shops.models import WriteBack
from standins.server import StandIns
from tests.shops.test_outbox import (
    TOKEN,
    WOO_KEY,
    WOO_SECRET,
    connect,
    deliver_until_done,
    press,
    shop_order,
)
from tests.support.pages import text_of
from tests.support.pipeline import wait_for

pytestmark = pytest.mark.django_db(transaction=True)
GID = "gid://shopify/Order/555"
CUSTOMER_NOTE = "Please ring twice.\nLeave it with the guard at gate 4."


@pytest.fixture
def stand_ins() -> Iterator[StandIns]:
    with StandIns() as stand_ins:
        stand_ins.control(
            "POST", "shopify", {"token": TOKEN, "orders": [GID], "notes": {GID: CUSTOMER_NOTE}}
        )
        stand_ins.control(
            "POST", "woocommerce", {"key": WOO_KEY, "secret": WOO_SECRET, "orders": ["727"]}
        )
        stand_ins.control("POST", "receivers", {"name": "kk", "secret": "whsec_kk"})
        yield stand_ins


def change_decision(order: Order, decision: str, by: User) -> None:
    """`by` changes the order's decision by hand on the order desk (the transition queues the
    write-back)."""
    decide_by_hand(order, by, decision, "the customer called")


def deliveries(stand_ins: StandIns) -> list[tuple[str, str, str, str | None]]:
    """What the merchant's server received: (delivery id, event, decision, previous)."""
    return [
        (
            each["delivery"],
            each["payload"]["event"],
            each["payload"]["order"]["decision"],
            each["payload"]["order"]["previous_decision"],
        )
        for each in stand_ins.records()["receivers"]["kk"]
    ]


def test_confirmed_then_cancelled_leaves_the_shopify_order_only_the_new_tag_and_the_customers_note(
    client, store, stand_ins, admin_user
):
    connect(store, "shopify", stand_ins, write_note=True)
    order = shop_order(store, "shopify", "555")
    press(order, Call.Outcome.CONFIRMED)
    deliver_until_done()
    confirmed = stand_ins.records()["shopify"][GID]
    assert confirmed["tags"] == ["robocall-confirmed"]
    assert confirmed["note"] == f"{CUSTOMER_NOTE}\nRobocall: Confirmed (the customer, by key press)"

    change_decision(order, "cancelled", by=admin_user)
    deliver_until_done()

    cancelled = stand_ins.records()["shopify"][GID]
    assert cancelled["tags"] == ["robocall-cancelled"]
    assert cancelled["note"] == (
        f"{CUSTOMER_NOTE}\nRobocall: decision changed: cancelled (was confirmed, by amina)"
    )
    row = WriteBack.objects.get()
    assert (row.state, row.event, row.version) == ("delivered", "cancelled", 2)
    assert (row.told_event, row.told_version) == ("cancelled", 2)
    assert row.result == [
        {
            "code": "untagged",
            "tags": ["robocall-confirmed", "robocall-no-answer", "robocall-skipped"],
        },
        {"code": "tagged", "tags": ["robocall-cancelled"]},
        {"code": "note_written"},
    ]
    client.force_login(admin_user)
    assert (
        "robodash's other tags removed (robocall-confirmed, robocall-no-answer, "
        "robocall-skipped); "
        "tagged robocall-cancelled; robodash's line in the order note written"
    ) in text_of(client.get(f"/orders/{order.pk}/"))


def test_confirmed_cancelled_confirmed_before_anything_went_out_sends_one_write_back_confirmed(
    store, stand_ins, admin_user
):
    connect(store, "woocommerce", stand_ins, status_mapping={"cancelled": "cancelled"})
    connect(store, "webhook", stand_ins)
    order = shop_order(store, "woocommerce", "727")

    press(order, Call.Outcome.CONFIRMED)
    change_decision(order, "cancelled", by=admin_user)
    change_decision(order, "confirmed", by=admin_user)
    deliver_until_done()

    webhook = WriteBack.objects.get(connection__kind="webhook")
    assert deliveries(stand_ins) == [(f"wb_{webhook.pk}_3", "order.confirmed", "confirmed", None)]
    woo = WriteBack.objects.get(connection__kind="woocommerce")
    assert stand_ins.records()["woocommerce"]["727"] == {
        "status": "processing",  # never set to cancelled: that was never sent
        "notes": [f"Robocall: Confirmed (amina, by hand). [robodash:wb{woo.pk}v3]"],
    }
    assert stand_ins.records()["requests"] == {"woocommerce": 2, "receiver": 1}  # list, post
    assert {(row.version, row.attempts, row.told_event) for row in WriteBack.objects.all()} == {
        (3, 1, "confirmed")
    }


def test_a_decision_changed_while_its_write_back_is_being_sent_is_sent_again_after_it(
    store, stand_ins, admin_user
):
    connect(store, "webhook", stand_ins)
    order = shop_order(store, "api", "")
    press(order, Call.Outcome.CONFIRMED)
    # The receiver holds its answer to the first delivery for 2 s: the change lands meanwhile.
    stand_ins.fail_next("receiver", {"hold_seconds": 2})
    [claimed] = outbox.claim()

    def send() -> None:
        try:
            outbox.deliver(claimed)
        finally:
            connections.close_all()

    sending = threading.Thread(target=send)
    sending.start()
    wait_for(
        lambda: stand_ins.records()["requests"].get("receiver"),
        timeout=10,
        what="the first delivery to reach the receiver",
    )
    change_decision(order, "cancelled", by=admin_user)
    sending.join(timeout=20)
    assert not sending.is_alive()

    row = WriteBack.objects.get()
    assert (row.state, row.version, row.told_event, row.told_version) == (
        "pending",
        2,
        "confirmed",
        1,
    )
    deliver_until_done()

    row.refresh_from_db()
    assert (row.state, row.told_event, row.told_version) == ("delivered", "cancelled", 2)
    assert deliveries(stand_ins) == [
        (f"wb_{row.pk}_1", "order.confirmed", "confirmed", None),
        (f"wb_{row.pk}_2", "order.cancelled", "cancelled", "confirmed"),
    ]


def test_a_woocommerce_note_tells_a_changed_decision_with_what_it_was_and_who_changed_it(
    store, stand_ins, admin_user
):
    connect(store, "woocommerce", stand_ins, status_mapping={"cancelled": "cancelled"})
    order = shop_order(store, "woocommerce", "727")
    press(order, Call.Outcome.CONFIRMED)
    deliver_until_done()

    change_decision(order, "cancelled", by=admin_user)
    deliver_until_done()

    row = WriteBack.objects.get()
    woo = stand_ins.records()["woocommerce"]["727"]
    assert woo["notes"] == [
        f"Robocall: Confirmed (the customer, by key press). [robodash:wb{row.pk}]",
        f"Robocall: decision changed: cancelled (was confirmed, by amina). [robodash:wb{row.pk}v2]",
    ]
    assert woo["status"] == "cancelled"
    assert row.summary() == "order note added; order status set to cancelled"


def test_an_order_unanswered_then_decided_by_hand_is_told_the_change_on_its_one_row(
    store, stand_ins, admin_user
):
    connect(store, "woocommerce", stand_ins)
    order = shop_order(store, "woocommerce", "727")
    press(order, Call.Outcome.UNREACHABLE)
    deliver_until_done()

    change_decision(order, "confirmed", by=admin_user)
    deliver_until_done()

    row = WriteBack.objects.get()
    notes = stand_ins.records()["woocommerce"]["727"]["notes"]
    assert notes == [
        f"Robocall: No answer after every attempt. [robodash:wb{row.pk}]",
        f"Robocall: decision changed: confirmed (was no answer, by amina). [robodash:wb{row.pk}v2]",
    ]
    assert (row.version, row.told_event) == (2, "confirmed")


def test_the_merchants_server_gets_the_previous_decision_and_a_delivery_id_per_version(
    store, stand_ins, admin_user
):
    connect(store, "webhook", stand_ins)
    order = shop_order(store, "api", "")
    press(order, Call.Outcome.CONFIRMED)
    deliver_until_done()

    change_decision(order, "cancelled", by=admin_user)
    deliver_until_done()

    row = WriteBack.objects.get()
    first, second = stand_ins.records()["receivers"]["kk"]
    assert (first["delivery"], first["payload"]["id"]) == (f"wb_{row.pk}_1",) * 2
    assert (second["delivery"], second["payload"]["id"]) == (f"wb_{row.pk}_2",) * 2
    assert first["payload"]["order"]["previous_decision"] is None
    assert second["payload"]["order"] | {"decided_at": None} == {
        "order_id": "#1001",
        "status": "cancelled",
        "decision": "cancelled",
        "previous_decision": "confirmed",
        "decided_by": "amina",
        "decided_at": None,
        "verdict": "call",
        "verdict_reasons": [],
        "amount": "1500.00",
        "charges_total": "0.00",
        "calls": 1,
    }
    assert second["signed"] is True


def test_a_decision_changed_and_changed_back_after_it_was_told_is_not_sent_again(
    store, stand_ins, admin_user
):
    connect(store, "shopify", stand_ins)
    order = shop_order(store, "shopify", "555")
    press(order, Call.Outcome.CONFIRMED)
    deliver_until_done()
    told = stand_ins.records()["requests"]["shopify"]

    change_decision(order, "cancelled", by=admin_user)
    change_decision(order, "confirmed", by=admin_user)
    deliver_until_done()

    assert stand_ins.records()["requests"]["shopify"] == told
    row = WriteBack.objects.get()
    assert (row.state, row.version, row.told_version) == ("delivered", 3, 3)
    assert row.summary() == "not sent: the shop already has this decision"


def test_a_change_makes_a_failed_write_back_due_again_with_a_new_day_of_tries(
    store, stand_ins, admin_user
):
    connection = connect(store, "shopify", stand_ins)
    connection.set_secrets(access_token="shpat_revoked")
    connection.save()
    order = shop_order(store, "shopify", "555")
    press(order, Call.Outcome.CONFIRMED)
    deliver_until_done()
    assert WriteBack.objects.get().state == "failed"
    connection.set_secrets(access_token=TOKEN)
    connection.save()

    change_decision(order, "cancelled", by=admin_user)
    row = WriteBack.objects.get()
    assert (row.state, row.version, row.attempts, row.give_up_at, row.last_error) == (
        "pending",
        2,
        0,
        None,
        "",
    )
    deliver_until_done()

    assert stand_ins.records()["shopify"][GID]["tags"] == ["robocall-cancelled"]
    assert WriteBack.objects.get().state == "delivered"
