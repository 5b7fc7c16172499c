"""What a valid order is: its columns, and the check of each value, the same for a file's rows,
the single-order form, a shop's webhook and the API.

Columns: `phone,amount,order_id,store_name`, optionally `voice_id,text3..text5,key1..key5` and
`placed_at` (when the shop says the order was placed: the stale rule reads it). Amounts may carry
the currency ("Rs 2,000", "PKR 2000", "2,000/-"). A placed time is ISO 8601 with or without its
offset ("2026-11-02 14:30", "2026-11-02T14:30:00+05:00"; Shopify's export writes "2026-11-02
14:30:00 +0500"); one without an offset is in the store's zone. A bad value is said by its field
with every reason, so a file's row is reported whole and a form shows each field's.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import models
from django.utils.dateparse import parse_datetime

from calls.intake.storable_text import refused_character
from calls.models import CENT, Call, Campaign, Store
from calls.phones import InvalidPhone, normalize_pk_mobile

REQUIRED_COLUMNS = ("phone", "amount", "order_id", "store_name")
TEXT_COLUMNS = ("text3", "text4", "text5")
KEY_COLUMNS = ("key1", "key2", "key3", "key4", "key5")
OPTIONAL_COLUMNS = ("voice_id", *TEXT_COLUMNS, *KEY_COLUMNS, "placed_at")
KNOWN_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
EXTRA_COLUMNS = (*TEXT_COLUMNS, *KEY_COLUMNS)


def max_length_of(model: type[models.Model], name: str) -> int:
    field = model._meta.get_field(name)
    assert isinstance(field, models.CharField) and field.max_length is not None
    return field.max_length


# Lengths of the Call fields each value lands in.
MAX_LENGTHS = {
    "order_id": max_length_of(Call, "order_id"),
    "store_name": max_length_of(Call, "text1"),
    **{name: max_length_of(Call, name) for name in EXTRA_COLUMNS},
}
MAX_AMOUNT = Decimal("9999999999.99")  # Call.amount: 12 digits, 2 of them decimals
MAX_VOICE_ID = 2**31 - 1  # PositiveIntegerField

# 1500, 1500.5, 1,500 or 1,500.50: commas only as thousands separators, so "1,5" is refused
# rather than read as 15 or 1.5.
_AMOUNT = re.compile(r"(\d+|\d{1,3}(,\d{3})+)(\.\d+)?")
# How rupees are written around the number: "Rs 2,000", "Rs. 2,000.50", "PKR 2000", "₨2000",
# "2,000/-". Dropped before the number is read.
_CURRENCY_BEFORE = re.compile(r"^(?:rs\.?|pkr|₨)\s*", re.IGNORECASE)
_CURRENCY_AFTER = re.compile(r"\s*(?:/-|rs\.?|pkr)$", re.IGNORECASE)
# A text cell starting with one of these is run by a spreadsheet as a formula.
FORMULA_STARTS = ("=", "+", "-", "@")


@dataclass(frozen=True)
class RowError:
    row: int  # as a spreadsheet numbers it: the header is row 1
    message: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.message}"


@dataclass(frozen=True)
class OrderRow:
    """One validated order, ready to become a call."""

    row: int  # 0 for the single-order form
    phone: str  # 923XXXXXXXXX
    amount: Decimal
    order_id: str
    store_name: str
    voice_id: int | None = None
    extras: Mapping[str, str] = field(default_factory=dict)  # text3..text5, key1..key5 given
    placed_at: dt.datetime | None = None  # when the shop says it was placed (optional)


def parse_amount(text: str) -> Decimal:
    """A positive amount in rupees with at most 2 decimals; ValueError saying why not."""
    text = text.strip()
    if not text:
        raise ValueError("amount is missing")
    number = _CURRENCY_AFTER.sub("", _CURRENCY_BEFORE.sub("", text))
    if not _AMOUNT.fullmatch(number):
        if number.startswith("-"):
            raise ValueError(f"amount {text!r} must be more than 0")
        raise ValueError(f"amount {text!r} is not a number (e.g. 1500, 1,500.50 or Rs 2,000)")
    try:
        value = Decimal(number.replace(",", ""))
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        raise ValueError(f"amount {text!r} is not a number") from None
    if value <= 0:
        raise ValueError(f"amount {text!r} must be more than 0")
    if value != value.quantize(CENT):
        raise ValueError(f"amount {text!r} has more than 2 decimals")
    if value > MAX_AMOUNT:
        raise ValueError(f"amount {text!r} is too large")
    return value.quantize(CENT)


def formula_warning(order: OrderRow) -> str:
    """What in a valid order a spreadsheet would run as a formula (a text cell starting with
    =, +, - or @), said for the preview; "" if nothing. The phone is left out: its + is normal
    and it is stored as digits. robodash keeps such text as written and its exports defuse
    it, but the file came from a spreadsheet that may already have run it."""
    texts = {"order_id": order.order_id, "store_name": order.store_name, **order.extras}
    columns = [name for name, value in texts.items() if value.startswith(FORMULA_STARTS)]
    if not columns:
        return ""
    one = len(columns) == 1
    return (
        f"{', '.join(columns)} start{'s' if one else ''} with "
        f"{', '.join(sorted({texts[name][0] for name in columns}))}: a spreadsheet may run "
        f"{'it as a formula; check the value is' if one else 'them as formulas; check they are'}"
        " what the customer should hear"
    )


def parse_voice_id(text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if not text.isdigit() or not 0 < int(text) <= MAX_VOICE_ID:
        raise ValueError(f"voice_id {text!r} must be a positive whole number")
    return int(text)


EARLIEST_PLACED_YEAR = 2000  # before the shops existed: a typo, not an order's time
_PLACED_EXAMPLE = "e.g. 2026-11-02 14:30 or 2026-11-02T14:30:00+05:00"


def parse_placed_at(text: str, zone: dt.tzinfo) -> dt.datetime | None:
    """When the order was placed (None for no value): ISO 8601, a time without an offset read
    in `zone`; ValueError saying why not. A time in the future is taken (a shop's clock may run
    ahead): the stale rule never holds it."""
    text = text.strip()
    if not text:
        return None
    try:
        # A date alone would be midnight, up to a day off: the rule needs the time.
        when = parse_datetime(text) if ":" in text else None
    except ValueError:  # well formed and still no time: a 31st of February
        when = None
    if when is None:
        raise ValueError(f"placed_at {text[:40]!r} is not a date and time ({_PLACED_EXAMPLE})")
    if when.year < EARLIEST_PLACED_YEAR:
        raise ValueError(f"placed_at {text[:40]!r} is before {EARLIEST_PLACED_YEAR}")
    return when if when.tzinfo is not None else when.replace(tzinfo=zone)


def validate_order(
    values: Mapping[str, str], *, row: int = 0, zone: dt.tzinfo = dt.UTC
) -> OrderRow | dict[str, str]:
    """The order in `values` (column name -> raw text), or every problem by field name. A
    placed time without an offset is in `zone` (the store's)."""
    text = {name: (value or "").strip() for name, value in values.items()}
    errors: dict[str, str] = {}

    phone = ""
    try:
        phone = normalize_pk_mobile(text.get("phone", ""))
    except InvalidPhone as exc:
        errors["phone"] = str(exc)

    amount = Decimal(0)
    try:
        amount = parse_amount(text.get("amount", ""))
    except ValueError as exc:
        errors["amount"] = str(exc)

    if not text.get("order_id"):
        errors["order_id"] = "order_id is missing"
    if not text.get("store_name"):
        errors["store_name"] = "store_name is missing (the voice reads it out to the customer)"

    voice_id = None
    try:
        voice_id = parse_voice_id(text.get("voice_id", ""))
    except ValueError as exc:
        errors["voice_id"] = str(exc)

    placed_at = None
    try:
        placed_at = parse_placed_at(text.get("placed_at", ""), zone)
    except ValueError as exc:
        errors["placed_at"] = str(exc)

    for name, value in text.items():
        refused = refused_character(name, value)
        if refused is not None:
            # Said instead of whatever else is wrong with the value: its other messages would
            # quote the refused character.
            errors[name] = str(refused)
            continue
        limit = MAX_LENGTHS.get(name)
        if limit is not None and len(value) > limit:
            errors[name] = f"{name} is longer than {limit} characters ({len(value)})"

    if errors:
        return errors
    return OrderRow(
        row=row,
        phone=phone,
        amount=amount,
        order_id=text["order_id"],
        store_name=text["store_name"],
        voice_id=voice_id,
        extras={name: text[name] for name in EXTRA_COLUMNS if text.get(name)},
        placed_at=placed_at,
    )


MESSAGE_FIELDS = (
    "order_id",
    "phone",
    "amount",
    "voice_id",
    "text1",
    "text2",
    *TEXT_COLUMNS,
    *KEY_COLUMNS,
)


def message_values(order: OrderRow, campaign: Campaign, store: Store) -> tuple[Any, ...]:
    """The MESSAGE_FIELDS fields of an order and of its first call."""
    extras = order.extras
    return (
        order.order_id,
        order.phone,
        order.amount,
        order.voice_id or campaign.voice_id or store.default_voice_id,
        order.store_name,
        order.order_id,
        *(extras.get(name, "") for name in TEXT_COLUMNS),
        *(extras.get(name, "") for name in KEY_COLUMNS),
    )
