"""A shop's order webhook, read into the fields robodash needs to call about it; a fulfillment
or an order's new status, read into what it says of the parcel (see "Deliveries" below).

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

Deliveries: a Shopify fulfillment (`fulfillments/create`, `fulfillments/update`) names its order
by `order_id`, the shop's own id (Order.shop_ref); its `shipment_status` says where the parcel
is (`delivered`, `failure`: returned, anything else: on its way), and a new fulfillment with no
status yet is a parcel shipped. A WooCommerce `order.updated` carries the whole order: its `id`
and its `status`, which the connection's mapping turns into the parcel's state. Each is dated by
the shop's own time of the change; an update without one is dated when it is received.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils.dateparse import parse_datetime

from calls.intake.rows import MAX_AMOUNT
from calls.intake.storable_text import refused_character, storable
from calls.models import Order


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
    # When the shop says the order was placed: Shopify's created_at, WooCommerce's
    # date_created_gmt (None when it is missing or no time: then the order is never stale).
    placed_at: dt.datetime | None = None
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


def _placed_time(value: Any) -> dt.datetime | None:
    """An order's created time as the shop wrote it, aware (no offset: UTC, as WooCommerce's
    *_gmt times are); None when it is missing or no time. Unlike a parcel's time, a bad one
    does not refuse the order: it is only never judged stale."""
    if not isinstance(value, str):
        return None
    try:
        parsed = parse_datetime(value.strip())
    except ValueError:  # well formed and still no time: a 31st of February
        return None
    if parsed is None or parsed.year < EARLIEST_YEAR:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


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
            placed_at=_placed_time(payload.get("created_at")),
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
            placed_at=_placed_time(payload.get("date_created_gmt")),
        )
    )


# --- Deliveries ---------------------------------------------------------------------------------

SHIPPED, DELIVERED, RETURNED = (
    Order.Delivery.SHIPPED,
    Order.Delivery.DELIVERED,
    Order.Delivery.RETURNED,
)
# Shopify's shipment_status words that are not "on its way".
SHOPIFY_SHIPMENT = {"delivered": DELIVERED, "failure": RETURNED}
# A fulfillment in one of these states sent nothing (Shopify's Fulfillment.status).
SHOPIFY_NOT_SENT = ("cancelled", "error", "failure")
EARLIEST_YEAR = 2000


@dataclass(frozen=True)
class DeliveryNews:
    """What a shop's webhook says of one order's parcel."""

    shop_order_id: str  # Order.shop_ref
    delivery: str  # an Order.Delivery: NONE ("") when it says nothing of the parcel
    at: dt.datetime | None  # the shop's own time of it (None: dated when received)
    tracking: str
    said: str  # the shop's own word for it, for the answer: "shipment_status delivered"
    status: str = ""  # WooCommerce: the order's status slug


def _shop_id(payload: dict[str, Any], name: str) -> str:
    value = payload.get(name)
    # Shopify sends its ids as JSON numbers, WooCommerce as numbers or digits.
    if isinstance(value, bool) or not isinstance(value, int | str):
        return ""
    return storable(_text(value))


def _shop_time(payload: dict[str, Any], *names: str) -> dt.datetime | None:
    """The first of `names` the payload has, as an aware time (one with no offset is UTC, as
    WooCommerce's *_gmt times are); None when it has none; UnreadableOrder when it is no time."""
    for name in names:
        value = payload.get(name)
        if value is None or value == "":
            continue
        try:
            parsed = parse_datetime(value) if isinstance(value, str) else None
        except ValueError:  # well formed and still no time: a 31st of February
            parsed = None
        # Before the shops existed is no parcel's time (and year 1 in an offset ahead of UTC
        # is a year Python cannot read back from the database).
        if parsed is None or parsed.year < EARLIEST_YEAR:
            raise UnreadableOrder(f"{name} {_text(value)[:40]!r} is not a time")
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        return parsed
    return None


def shopify_fulfillment(payload: Any, *, created: bool) -> DeliveryNews:
    """A `fulfillments/create` (`created`) or `fulfillments/update` webhook's body."""
    if not isinstance(payload, dict):
        raise UnreadableOrder("the body is not a JSON object")
    order_id = _shop_id(payload, "order_id")
    if not order_id:
        raise UnreadableOrder("the fulfillment has no order_id")
    at = _shop_time(payload, "updated_at", "created_at")
    numbers = payload.get("tracking_numbers")
    tracking = storable(
        _first(payload.get("tracking_number"), *(numbers if isinstance(numbers, list) else []))
    )
    status = _text(payload.get("status")).lower()
    shipment = _text(payload.get("shipment_status")).lower()
    if status in SHOPIFY_NOT_SENT:
        return DeliveryNews(order_id, "", at, tracking, f"fulfillment status {storable(status)}")
    if shipment:
        delivery = SHOPIFY_SHIPMENT.get(shipment, SHIPPED)
        return DeliveryNews(
            order_id, delivery, at, tracking, f"shipment_status {storable(shipment)}"
        )
    # A new fulfillment is a parcel on its way; an update with no shipment status says nothing.
    said = "a new fulfillment" if created else "no shipment_status"
    return DeliveryNews(order_id, SHIPPED if created else "", at, tracking, said)


def woo_status_slug(value: str) -> str:
    """A WooCommerce order status as its REST API names it: `completed`, not `wc-completed`."""
    slug = value.strip().lower()
    return slug.removeprefix("wc-")


def delivery_for_woo_status(status: str, mapping: Mapping[str, str]) -> str:
    """What WooCommerce order status `status` says of the parcel, under a connection's mapping
    (ShopConnection.delivery_statuses): its entry, else returned for a slug holding "return"
    or "rto", else nothing ("")."""
    slug = woo_status_slug(status)
    if slug in mapping:
        named = mapping[slug]
        return named if named in (SHIPPED, DELIVERED, RETURNED) else ""
    if "return" in slug or "rto" in slug:
        return RETURNED
    return ""


def woocommerce_order_update(payload: Any, mapping: Mapping[str, str]) -> DeliveryNews:
    """An `order.updated` webhook's body (the whole order), under the connection's mapping."""
    if not isinstance(payload, dict):
        raise UnreadableOrder("the body is not a JSON object")
    order_id = _shop_id(payload, "id")
    if not order_id:
        raise UnreadableOrder("the order has no id")
    status = payload.get("status")
    if not isinstance(status, str) or not woo_status_slug(status):
        raise UnreadableOrder("the order has no status")
    slug = storable(woo_status_slug(status))
    return DeliveryNews(
        order_id,
        delivery_for_woo_status(slug, mapping),
        _shop_time(payload, "date_modified_gmt"),
        "",
        f"status {slug}",
        status=slug,
    )
