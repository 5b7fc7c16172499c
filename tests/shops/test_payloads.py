"""Shop order webhooks read into what robodash calls about, from payloads shaped like the
shops' own (trimmed to the fields that matter)."""

from decimal import Decimal

import pytest

from shops.payloads import UnreadableOrder, shopify_order, woocommerce_order

COD = ["Cash on Delivery (COD)"]


def shopify_payload(**changes):
    payload = {
        "id": 820982911946154508,
        "name": "#1001",
        "total_price": "1500.00",
        "payment_gateway_names": ["Cash on Delivery (COD)"],
        "phone": "+923009999999",
        "customer": {"phone": "03008888888", "first_name": "Ayesha", "last_name": "Khan"},
        "billing_address": {"phone": "0300 7777777", "name": "Ayesha K."},
        "shipping_address": {"phone": "0300-1234567", "name": "Ayesha Khan"},
    }
    return payload | changes


def test_a_shopify_cod_order_gives_its_name_id_amount_shipping_phone_and_name():
    order = shopify_order(shopify_payload(), COD)

    assert (order.order_id, order.shop_order_id) == ("#1001", "820982911946154508")
    assert order.amount == Decimal("1500.00")
    assert (order.phone, order.customer_name) == ("0300-1234567", "Ayesha Khan")
    assert order.cash_on_delivery is True


def test_the_shopify_phone_falls_back_from_shipping_to_billing_to_customer_to_the_order():
    no_shipping = shopify_payload(shipping_address=None)
    assert shopify_order(no_shipping, COD).phone == "0300 7777777"
    assert shopify_order(no_shipping, COD).customer_name == "Ayesha K."
    bare = shopify_payload(shipping_address={}, billing_address={"phone": ""})
    assert shopify_order(bare, COD).phone == "03008888888"
    assert shopify_order(bare, COD).customer_name == "Ayesha Khan"
    assert shopify_order(shopify_payload(shipping_address={}, customer={}), COD).phone == (
        "0300 7777777"
    )
    nothing = shopify_payload(shipping_address={}, billing_address={}, customer={})
    assert shopify_order(nothing, COD).phone == "+923009999999"
    assert shopify_order(nothing | {"phone": None}, COD).phone == ""


def test_a_shopify_order_paid_by_card_is_not_cod_and_gateway_case_does_not_matter():
    card = shopify_payload(payment_gateway_names=["shopify_payments"])
    assert not shopify_order(card, COD).cash_on_delivery
    lower = shopify_payload(payment_gateway_names=["cash on delivery (cod)"])
    assert shopify_order(lower, COD).cash_on_delivery


@pytest.mark.parametrize(
    "payload", [[], "x", {"id": 1}, {"name": "#1"}], ids=["list", "str", "no-name", "no-id"]
)
def test_a_shopify_payload_without_an_order_identity_is_unreadable(payload):
    with pytest.raises(UnreadableOrder):
        shopify_order(payload, COD)


@pytest.mark.parametrize("total", ["abc", "-5", "NaN", None])
def test_a_shopify_total_that_is_not_an_amount_is_left_out(total):
    assert shopify_order(shopify_payload(total_price=total), COD).amount is None


def woo_payload(**changes):
    payload = {
        "id": 727,
        "number": "1001",
        "total": "2450.50",
        "payment_method": "cod",
        "billing": {"first_name": "Bilal", "last_name": "Ahmed", "phone": "03011234568"},
        "shipping": {"first_name": "B.", "last_name": "Ahmed", "phone": "0300 0000000"},
    }
    return payload | changes


def test_a_woocommerce_cod_order_gives_its_number_id_amount_billing_phone_and_name():
    order = woocommerce_order(woo_payload(), ["cod"])

    assert (order.order_id, order.shop_order_id) == ("1001", "727")
    assert order.amount == Decimal("2450.50")
    assert (order.phone, order.customer_name) == ("03011234568", "Bilal Ahmed")
    assert order.cash_on_delivery and order.payment == "cod"


def test_a_woocommerce_order_falls_back_to_the_shipping_phone_and_its_id():
    order = woocommerce_order(woo_payload(billing={}, number=""), ["cod"])

    assert (order.order_id, order.phone, order.customer_name) == ("727", "0300 0000000", "B. Ahmed")


def test_a_woocommerce_order_paid_otherwise_is_not_cod():
    assert not woocommerce_order(woo_payload(payment_method="bacs"), ["cod"]).cash_on_delivery
