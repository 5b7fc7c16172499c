"""A shop's order webhook, read into the fields robodash needs to call about it.

Only what the call and the write-back need is read; everything else in the payload is ignored.
A payload without an order id cannot become an order (UnreadableOrder); one without a usable
phone still can, and is stored as rejected with its reason, so nothing the shop sent is silently
dropped. Whether the order is cash on delivery is the connection's list of gateway names
(Shopify) or payment method ids (WooCommerce), compared without regard to case.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any


class UnreadableOrder(ValueError):
    """The payload is not an order robodash can store; str() says why."""


@dataclass(frozen=True)
class IncomingOrder:
    order_id: str  # the shop's order name or number: what the customer hears, what staff search
    shop_order_id: str  # the shop's internal id: what the write-back addresses
    phone: str  # as the shop sent it ("" when it sent none); normalised when stored
    amount: Decimal | None
    customer_name: str
    cash_on_delivery: bool
    payment: str  # the gateways or method, as the shop named them


def _text(value: Any) -> str:
    return str(value).strip() if value is not None else ""


def _amount(value: Any) -> Decimal | None:
    try:
        amount = Decimal(_text(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() and amount >= 0 else None


def _first(*values: Any) -> str:
    return next((text for value in values if (text := _text(value))), "")


def _section(payload: dict[str, Any], name: str) -> dict[str, Any]:
    section = payload.get(name)
    return section if isinstance(section, dict) else {}


def _full_name(section: dict[str, Any]) -> str:
    return _first(
        section.get("name"),
        " ".join(filter(None, (_text(section.get("first_name")), _text(section.get("last_name"))))),
    )


def _is_cod(names: list[str], cod: list[str]) -> bool:
    wanted = {name.strip().casefold() for name in cod}
    return any(name.strip().casefold() in wanted for name in names)


def shopify_order(payload: Any, cod_gateways: list[str]) -> IncomingOrder:
    """An `orders/create` webhook: order id = `name` (#1001), write-back id = `id`."""
    if not isinstance(payload, dict):
        raise UnreadableOrder("the body is not a JSON object")
    order_id, shop_order_id = _text(payload.get("name")), _text(payload.get("id"))
    if not order_id or not shop_order_id:
        raise UnreadableOrder("the order has no name or id")
    shipping, billing = _section(payload, "shipping_address"), _section(payload, "billing_address")
    customer = _section(payload, "customer")
    gateways = payload.get("payment_gateway_names")
    gateways = [_text(g) for g in gateways] if isinstance(gateways, list) else []
    return IncomingOrder(
        order_id=order_id,
        shop_order_id=shop_order_id,
        phone=_first(
            shipping.get("phone"), billing.get("phone"), customer.get("phone"), payload.get("phone")
        ),
        amount=_amount(payload.get("total_price")),
        customer_name=_first(_full_name(shipping), _full_name(billing), _full_name(customer)),
        cash_on_delivery=_is_cod(gateways, cod_gateways),
        payment=", ".join(gateways) or "none",
    )


def woocommerce_order(payload: Any, cod_methods: list[str]) -> IncomingOrder:
    """An `order.created` webhook: order id = `number`, write-back id = `id`."""
    if not isinstance(payload, dict):
        raise UnreadableOrder("the body is not a JSON object")
    shop_order_id = _text(payload.get("id"))
    order_id = _first(payload.get("number"), shop_order_id)
    if not shop_order_id:
        raise UnreadableOrder("the order has no id")
    billing, shipping = _section(payload, "billing"), _section(payload, "shipping")
    method = _text(payload.get("payment_method"))
    return IncomingOrder(
        order_id=order_id,
        shop_order_id=shop_order_id,
        phone=_first(billing.get("phone"), shipping.get("phone")),
        amount=_amount(payload.get("total")),
        customer_name=_first(_full_name(billing), _full_name(shipping)),
        cash_on_delivery=_is_cod([method], cod_methods),
        payment=method or "none",
    )
