"""A shop's order webhook, read into the fields robodash needs to call about it.

Only what the call and the write-back need is read; everything else in the payload is ignored.
A payload without an order id cannot become an order (UnreadableOrder); one without a usable
phone still can, and is stored as rejected with its reason, so nothing the shop sent is silently
dropped. So can one whose text robodash does not take (a NUL, a lone surrogate: see
calls.intake.storable_text) or whose amount is past what robodash stores: the reader names each such
field in `problems` and hands on a value that can be stored, with the refused characters
replaced. Whether the order is cash on delivery is the connection's list of gateway names
(Shopify) or payment method ids (WooCommerce), compared without regard to case.

Whether an order is cancelled is read from the body, never from the topic header: the shop
signs the body only, so a signed new order sent again under a cancellation's topic must not
withdraw its call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from calls.intake.rows import MAX_AMOUNT
from calls.intake.storable_text import refused_character, storable


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
    cancelled: bool = False  # the body says the order is cancelled (or deleted)
    # Why the order cannot be called, by field, found while reading it (see the module's doc).
    problems: Mapping[str, str] = field(default_factory=dict)


# The text fields of an IncomingOrder, each checked by _storable_order.
_TEXT_FIELDS = ("order_id", "shop_order_id", "phone", "customer_name", "payment")


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


def _storable_order(order: IncomingOrder) -> IncomingOrder:
    """`order` with every value storable, and a problem named for each that was not."""
    problems: dict[str, str] = {}
    values: dict[str, Any] = {}
    for name in _TEXT_FIELDS:
        refused = refused_character(name, getattr(order, name))
        if refused is not None:
            problems[name] = str(refused)
            values[name] = storable(getattr(order, name))
    if order.amount is not None and order.amount > MAX_AMOUNT:
        # Past the column's precision: the database would refuse it, as it would a NUL.
        shown = str(order.amount) if len(str(order.amount)) <= 24 else f"{order.amount:.6e}"
        problems["amount"] = f"amount {shown} is more than {MAX_AMOUNT:,}"
        values["amount"] = None
    return replace(order, **values, problems=problems) if problems else order


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
    return _storable_order(
        IncomingOrder(
            order_id=order_id,
            shop_order_id=shop_order_id,
            phone=_first(
                shipping.get("phone"),
                billing.get("phone"),
                customer.get("phone"),
                payload.get("phone"),
            ),
            amount=_amount(payload.get("total_price")),
            customer_name=_first(_full_name(shipping), _full_name(billing), _full_name(customer)),
            cash_on_delivery=_is_cod(gateways, cod_gateways),
            payment=", ".join(gateways) or "none",
            # Set in the orders/cancelled webhook's body (Shopify's REST Order resource).
            cancelled=bool(payload.get("cancelled_at")),
        )
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
    status = _text(payload.get("status"))
    return _storable_order(
        IncomingOrder(
            order_id=order_id,
            shop_order_id=shop_order_id,
            phone=_first(billing.get("phone"), shipping.get("phone")),
            amount=_amount(payload.get("total")),
            customer_name=_first(_full_name(billing), _full_name(shipping)),
            cash_on_delivery=_is_cod([method], cod_methods),
            payment=method or "none",
            # order.deleted sends the order's id alone (or the order, trashed); an order's own
            # body says cancelled when it is.
            cancelled=status in ("cancelled", "trash") or set(payload) == {"id"},
        )
    )
