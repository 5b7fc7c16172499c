"""What the orders API takes, each rule written once: the check the API runs is the schema its
OpenAPI description shows, so a client (or a fuzzer) reading the description knows exactly what
will be refused. tests/shops/test_api_description.py holds the two together.

- `Amount`: a JSON number or a string of digits, more than 0, at most two decimals.
- `Text`, `OrderId`: text without control characters (tab and line breaks aside) or lone
  surrogates, as every intake path refuses them (calls/intake/storable_text.py); an order id is not
  blank either.
- `PakistaniMobile`: a string with the format `pk-mobile`, which the description explains. A
  numbering plan is no regular expression (phonenumbers knows it), so the format names the rule
  and the pipeline's normalize_pk_mobile checks it, with the reason, as for every other order.
- `PastTime`: a string with the format `past-date-time`: an RFC 3339 time with its offset, not
  later than a few minutes from now (no schema says "not in the future": the format names the
  rule, which the description explains and the API checks).
- `OffsetTime`: a string with the format `offset-date-time`: an RFC 3339 time with its offset,
  any time (an order's placed time: a shop's clock ahead of ours is no reason to refuse it).
- `DecimalJsonParser`: reads a body's fractions as Decimal, never as float.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

from django.http import HttpRequest
from django.utils import timezone
from ninja import Field
from ninja.parser import Parser
from pydantic import (
    AfterValidator,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PlainValidator,
    WithJsonSchema,
    WrapValidator,
)
from pydantic import ValidatorFunctionWrapHandler as Check
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from calls.intake.rows import MAX_AMOUNT
from calls.intake.storable_text import CONTROL_CLASS, refused_character
from calls.models import CENT

PK_MOBILE = "pk-mobile"
PAST_TIME = "past-date-time"
OFFSET_TIME = "offset-date-time"


class NotJson(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise NotJson(f"{name} is not a JSON number")


class DecimalJsonParser(Parser):
    """JSON with its fractions read as Decimal, never float: an amount is money, and a float
    would round 1500.000000000000000001 to an amount the description says is refused. NaN and
    Infinity, which Python's json reads by default, are not JSON: refused too."""

    def parse_body(self, request: HttpRequest) -> Any:
        return json.loads(request.body, parse_float=Decimal, parse_constant=_refuse_constant)


# A string amount is plain digits, more than 0, at most 10 before the point and 2 after it.
# Decimal reads more (" 5", "+5", "5.", "1e3", "0"); the description promises exactly this.
AMOUNT_TEXT = re.compile(r"[1-9][0-9]{0,9}(\.[0-9]{1,2})?|0\.(0[1-9]|[1-9][0-9]?)")


def _amount_as_described(value: Any, check: Check) -> Decimal:
    amount: Decimal = check(value)  # pydantic's reasons first: not a number, too small, too long
    if isinstance(value, str) and not AMOUNT_TEXT.fullmatch(value):
        raise ValueError("write it as digits with at most two decimals, e.g. 1500 or 1500.50")
    return amount.quantize(CENT)  # 1E+2 (a JSON number) as 100.00, as the pipeline reads it


Amount = Annotated[
    Decimal,
    Field(gt=0, max_digits=12, decimal_places=2),
    WrapValidator(_amount_as_described),
    WithJsonSchema(
        {
            "anyOf": [
                {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "maximum": float(MAX_AMOUNT),
                    "multipleOf": 0.01,
                },
                {"type": "string", "pattern": f"^(?:{AMOUNT_TEXT.pattern})$"},
            ],
            "description": "rupees, more than 0, at most two decimals: a number (1500.5) or "
            'digits ("1500.50")',
            "examples": ["1500.00"],
        },
        mode="validation",
    ),
]


def _why_not_text(value: str) -> str:
    """Why `value` breaks Text's or OrderId's pattern: a refused character, else blankness."""
    refused = refused_character("value", value)
    return refused.reason if refused is not None else "is blank"


@dataclass(frozen=True)
class Matching:
    """A string rule as a regular expression the description shows and the API checks, and the
    reason a person reads when a value breaks it. The pattern is written in the subset that
    Python's re and the ECMA 262 dialect of JSON Schema read alike."""

    pattern: str
    reason: Callable[[str], str]

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        rule = re.compile(self.pattern)

        def check(value: str) -> str:
            # A lone surrogate too, which the pattern cannot name (calls/intake/storable_text.py).
            if not rule.search(value) or refused_character("value", value) is not None:
                raise ValueError(self.reason(value))
            return value

        return core_schema.no_info_after_validator_function(check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        described = handler(schema)
        described["pattern"] = self.pattern
        return described


# calls/intake/storable_text.py's control characters, as a class's inside, to negate it.
_CONTROL = CONTROL_CLASS
# What str.strip() takes off both ends (the controls among them are refused anyway).
_SPACE = r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"

Text = Annotated[str, Matching(f"^[^{_CONTROL}]*$", _why_not_text)]
OrderId = Annotated[
    str,
    Matching(
        f"^[^{_CONTROL}]*[^{_CONTROL}{_SPACE}][^{_CONTROL}]*$",
        _why_not_text,
    ),
]


@dataclass(frozen=True)
class Format:
    """A JSON Schema `format` on a string: a rule the description names (and explains in the
    field's description) that a pattern cannot say; the API's own pipeline checks it."""

    name: str

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        described = handler(schema)
        described["format"] = self.name
        return described


def _storable(value: str) -> str:
    if refused_character("value", value) is not None:
        raise ValueError(_why_not_text(value))
    return value


# A number is checked by the pipeline, which says why one is refused; a character no number has is
# refused here first, with the same reason as every text's (the format already excludes it, so
# the description needs no pattern, which would only mislead a generator into blank numbers).
PakistaniMobile = Annotated[str, AfterValidator(_storable), Format(PK_MOBILE)]


# RFC 3339's date-time, as the description's pattern and the check's: a date, T, a time to the
# second (fractions up to microseconds), and its offset (Z or ±hh:mm). A time without an offset
# names no instant (Karachi's noon or the server's?), so it is refused rather than guessed.
RFC3339 = (
    r"^[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?"
    r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
# How far ahead of robodash's clock a time may be: the sender's clock may run a little fast.
CLOCK_SLACK = dt.timedelta(minutes=5)


def _offset_time(value: Any) -> dt.datetime:
    if not isinstance(value, str) or not re.search(RFC3339, value):
        raise ValueError(
            "write it as an ISO 8601 time with its offset, e.g. 2026-11-02T14:30:00+05:00 or "
            "2026-11-02T09:30:00Z"
        )
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("is not a date and time that exists (e.g. 31 February)") from None


def _past_time(value: Any) -> dt.datetime:
    when = _offset_time(value)
    if when > timezone.now() + CLOCK_SLACK:
        raise ValueError(
            "is in the future: send the time the parcel got there, or leave `at` out to have "
            "it dated when robodash receives it"
        )
    return when


PastTime = Annotated[
    dt.datetime,
    PlainValidator(_past_time),
    WithJsonSchema(
        {
            "type": "string",
            "format": PAST_TIME,
            "pattern": RFC3339,
            "description": f"format {PAST_TIME}: an RFC 3339 (ISO 8601) time with its offset, "
            f"no later than {CLOCK_SLACK.seconds // 60} minutes after robodash's clock",
            "examples": ["2026-11-02T14:30:00+05:00"],
        },
        mode="validation",
    ),
]


OffsetTime = Annotated[
    dt.datetime,
    PlainValidator(_offset_time),
    WithJsonSchema(
        {
            "type": "string",
            "format": OFFSET_TIME,
            "pattern": RFC3339,
            "description": f"format {OFFSET_TIME}: an RFC 3339 (ISO 8601) time with its offset",
            "examples": ["2026-11-02T14:30:00+05:00"],
        },
        mode="validation",
    ),
]
