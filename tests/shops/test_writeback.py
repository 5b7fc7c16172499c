"""Writing a decision back, against the shop stand-ins over real HTTP: what each shop records,
and how every kind of failure is classified (try again later, or a person must act)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from shops.writeback import (
    ShopifyTarget,
    WooCommerceTarget,
    WriteBackFailed,
    deliver_webhook,
    shopify_add_tags,
    shopify_remove_tags,
    shopify_write_note_line,
    woocommerce_add_note,
    woocommerce_set_status,
)
from standins.server import StandIns

SHOPIFY_TOKEN = "shpat_5f3e2d1c0b9a8f7e6d5c4b3a"
WOO_KEY, WOO_SECRET = "ck_1a2b3c4d5e", "cs_6f7a8b9c0d"
ORDER = "820982911946154508"
GID = f"gid://shopify/Order/{ORDER}"


@pytest.fixture
def stand_ins() -> Iterator[StandIns]:
    with StandIns() as stand_ins:
        stand_ins.control("POST", "shopify", {"token": SHOPIFY_TOKEN, "orders": [GID]})
        stand_ins.control(
            "POST", "woocommerce", {"key": WOO_KEY, "secret": WOO_SECRET, "orders": ["1001"]}
        )
        stand_ins.control("POST", "receivers", {"name": "merchant", "secret": "whsec-merchant"})
        yield stand_ins


@pytest.fixture
def shopify(stand_ins: StandIns) -> ShopifyTarget:
    return ShopifyTarget(stand_ins.shopify_admin_url, SHOPIFY_TOKEN)


@pytest.fixture
def woo(stand_ins: StandIns) -> WooCommerceTarget:
    return WooCommerceTarget(stand_ins.root_url, WOO_KEY, WOO_SECRET)


def test_shopify_tags_and_robodashs_note_line_reach_the_order(stand_ins, shopify):
    assert shopify_add_tags(shopify, ORDER, ["robocall-confirmed"]) == {
        "code": "tagged",
        "tags": ["robocall-confirmed"],
    }
    line = "Robocall: Confirmed (the customer, by key press)"
    assert shopify_write_note_line(shopify, ORDER, line) == {"code": "note_written"}

    order = stand_ins.records()["shopify"][GID]
    assert order["tags"] == ["robocall-confirmed"]
    assert order["note"] == line


def test_robodashs_note_line_replaces_its_own_earlier_line_and_keeps_the_customers(
    stand_ins, shopify
):
    customer = "Please ring the bell twice.\nLeave it with the guard if we are out."
    stand_ins.control("POST", "shopify", {"token": SHOPIFY_TOKEN, "notes": {GID: customer}})

    shopify_write_note_line(shopify, ORDER, "Robocall: Confirmed (the customer, by key press)")
    changed = "Robocall: decision changed: cancelled (was confirmed, by amina)"
    shopify_write_note_line(shopify, ORDER, changed)
    again = shopify_write_note_line(shopify, ORDER, changed)

    order = stand_ins.records()["shopify"][GID]
    assert order["note"] == f"{customer}\n{changed}"
    assert again == {"code": "note_unchanged"} and order["note_writes"] == 2


def test_the_shopify_stand_in_overwrites_only_the_fields_an_order_update_gives(stand_ins):
    """As Shopify documents OrderInput: `note` and `customAttributes` each overwrite the
    order's; a field left out is left as it was."""
    stand_ins.control("POST", "shopify", {"token": SHOPIFY_TOKEN, "notes": {GID: "Gate 4"}})
    attributes = [{"key": "robodash", "value": "confirmed"}]

    def update(**given: object) -> dict[str, object]:
        answer = requests.post(
            stand_ins.shopify_admin_url,
            headers={"X-Shopify-Access-Token": SHOPIFY_TOKEN},
            json={
                "query": "mutation u($input: OrderInput!) { orderUpdate(input: $input) "
                "{ order { id } userErrors { message } } }",
                "variables": {"input": {"id": GID, **given}},
            },
            timeout=5,
        )
        assert answer.json()["data"]["orderUpdate"]["userErrors"] == []
        return stand_ins.records()["shopify"][GID]

    assert update(customAttributes=attributes)["note"] == "Gate 4"
    assert update(note="Gate 5")["custom_attributes"] == attributes
    assert update(customAttributes=[]) == {**update(), "custom_attributes": [], "note": "Gate 5"}


def test_removing_shopify_tags_removes_those_only_and_a_missing_one_is_no_error(stand_ins, shopify):
    shopify_add_tags(shopify, ORDER, ["vip", "robocall-confirmed"])

    removed = shopify_remove_tags(shopify, ORDER, ["robocall-confirmed", "robocall-no-answer"])

    assert removed == {"code": "untagged", "tags": ["robocall-confirmed", "robocall-no-answer"]}
    assert stand_ins.records()["shopify"][GID]["tags"] == ["vip"]


def test_a_note_for_an_order_shopify_does_not_know_needs_a_person(stand_ins, shopify):
    with pytest.raises(WriteBackFailed) as failed:
        shopify_write_note_line(shopify, "999", "Robocall: Confirmed (the customer, by key press)")

    assert failed.value.retry is False and failed.value.stored == "unknown_order:200"


def test_adding_a_shopify_tag_twice_leaves_one_tag(stand_ins, shopify):
    shopify_add_tags(shopify, ORDER, ["robocall-confirmed"])
    shopify_add_tags(shopify, ORDER, ["robocall-confirmed"])

    assert stand_ins.records()["shopify"][GID]["tags"] == ["robocall-confirmed"]


def test_shopify_user_errors_on_http_200_are_a_failure_no_retry_can_mend(stand_ins, shopify):
    with pytest.raises(WriteBackFailed) as failed:
        shopify_add_tags(shopify, "999", ["robocall-confirmed"])

    assert failed.value.retry is False
    # The shop's own words ("Order not found") are not kept: only a code and the status.
    assert failed.value.stored == "refused:200"
    assert "Order not found" not in str(failed.value)


def test_a_refused_shopify_token_needs_a_person_and_is_never_quoted(stand_ins):
    wrong = ShopifyTarget(stand_ins.shopify_admin_url, "shpat_wrong_token_value")
    with pytest.raises(WriteBackFailed) as failed:
        shopify_add_tags(wrong, ORDER, ["robocall-confirmed"])

    assert failed.value.retry is False
    assert failed.value.stored == "credentials:401"
    assert "shpat_wrong_token_value" not in str(failed.value)


@pytest.mark.parametrize(
    ("failure", "retry_after"),
    [({"status": 500}, None), ({"status": 503}, None), ({"status": 429, "retry_after": 7}, 7.0)],
    ids=["500", "503", "429"],
)
def test_a_shopify_outage_or_rate_limit_is_retried_later_honouring_retry_after(
    stand_ins, shopify, failure, retry_after
):
    stand_ins.fail_next("shopify", failure)
    with pytest.raises(WriteBackFailed) as failed:
        shopify_add_tags(shopify, ORDER, ["robocall-confirmed"])

    assert failed.value.retry is True
    assert failed.value.retry_after == retry_after
    assert stand_ins.records()["shopify"][GID]["tags"] == []
    shopify_add_tags(shopify, ORDER, ["robocall-confirmed"])  # the shop is back
    assert stand_ins.records()["shopify"][GID]["tags"] == ["robocall-confirmed"]


def test_a_shop_that_does_not_answer_in_time_is_retried_later(stand_ins, shopify, monkeypatch):
    monkeypatch.setattr("shops.writeback.TIMEOUT", (2.0, 0.3))
    stand_ins.fail_next("shopify", {"hold_seconds": 1.0})
    started = time.monotonic()
    with pytest.raises(WriteBackFailed) as failed:
        shopify_add_tags(shopify, ORDER, ["robocall-confirmed"])

    assert failed.value.retry is True and failed.value.stored == "timeout"
    assert time.monotonic() - started < 1.0


def test_nothing_listening_is_retried_later():
    closed = ShopifyTarget("http://127.0.0.1:9/admin/api/2025-07/graphql.json", SHOPIFY_TOKEN)
    with pytest.raises(WriteBackFailed) as failed:
        shopify_add_tags(closed, ORDER, ["robocall-confirmed"])

    assert failed.value.retry is True and failed.value.stored == "connect"


def test_a_woocommerce_note_and_status_reach_the_order(stand_ins, woo):
    assert woocommerce_add_note(woo, "1001", "Confirmed [robodash:41]", "[robodash:41]") == {
        "code": "note_added"
    }
    assert woocommerce_set_status(woo, "1001", "cancelled") == {
        "code": "status_set",
        "status": "cancelled",
    }

    order = stand_ins.records()["woocommerce"]["1001"]
    assert order == {"status": "cancelled", "notes": ["Confirmed [robodash:41]"]}


def test_a_woocommerce_note_already_written_is_not_written_again(stand_ins, woo, monkeypatch):
    # The notes are listed, then the note is posted and lands, but its answer comes too late.
    monkeypatch.setattr("shops.writeback.TIMEOUT", (2.0, 0.3))
    stand_ins.fail_next("woocommerce", {"status": 0}, {"hold_seconds": 0.8})
    with pytest.raises(WriteBackFailed) as lost:
        woocommerce_add_note(woo, "1001", "Cancelled [robodash:42]", "[robodash:42]")
    assert lost.value.retry is True
    deadline = time.monotonic() + 5
    while not stand_ins.records()["woocommerce"]["1001"]["notes"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stand_ins.records()["woocommerce"]["1001"]["notes"] == ["Cancelled [robodash:42]"]

    again = woocommerce_add_note(woo, "1001", "Cancelled [robodash:42]", "[robodash:42]")

    assert again == {"code": "note_already_there"}
    assert stand_ins.records()["woocommerce"]["1001"]["notes"] == ["Cancelled [robodash:42]"]


def test_woocommerce_refuses_wrong_keys_and_unknown_orders_for_good(stand_ins, woo):
    wrong = WooCommerceTarget(stand_ins.root_url, WOO_KEY, "cs_wrong")
    with pytest.raises(WriteBackFailed) as refused:
        woocommerce_add_note(wrong, "1001", "x [robodash:1]", "[robodash:1]")
    with pytest.raises(WriteBackFailed) as unknown:
        woocommerce_add_note(woo, "77", "x [robodash:1]", "[robodash:1]")

    assert refused.value.retry is False and refused.value.stored == "credentials:401"
    assert "cs_wrong" not in str(refused.value)
    assert unknown.value.retry is False and unknown.value.stored == "unknown_order:404"


def test_a_webhook_arrives_signed_with_its_delivery_id(stand_ins):
    url = stand_ins.receiver_url("merchant")
    payload = {"order_id": "KK-1001", "decision": "confirmed", "charges": "11.00"}

    assert deliver_webhook(url, "whsec-merchant", payload, "dlv_1") == {
        "code": "delivered",
        "status": 200,
    }

    [delivery] = stand_ins.records()["receivers"]["merchant"]
    assert delivery == {"delivery": "dlv_1", "signed": True, "payload": payload}


def test_a_webhook_the_receiver_cannot_verify_or_a_down_receiver_is_retried_later(stand_ins):
    url = stand_ins.receiver_url("merchant")
    with pytest.raises(WriteBackFailed) as unsigned:
        deliver_webhook(url, "not-the-merchants-secret", {"order_id": "KK-1"}, "dlv_2")
    stand_ins.fail_next("receiver", {"status": 429, "retry_after": 30})
    with pytest.raises(WriteBackFailed) as limited:
        deliver_webhook(url, "whsec-merchant", {"order_id": "KK-1"}, "dlv_3")

    assert unsigned.value.retry is True and unsigned.value.stored == "http:400"
    assert limited.value.retry is True and limited.value.retry_after == 30.0
