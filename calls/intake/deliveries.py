"""A courier's sheet of parcels (PostEx, Leopards, TCS, Trax, M&P, Call Courier…) read into what
became of each order's parcel: per row, its order reference, its delivery state and its tracking
number, or the problem that keeps the row from being used.

The file is read as an order upload is (calls/intake/files.py: CSV in UTF-8 with or without a
BOM, or an .xlsx's first sheet streamed within calls/intake/workbooks.py's bounds). Only the
header differs: each courier names its columns its own way, so a column is found by its name
with case, spaces and punctuation ignored ("Order Ref #", "order_ref" and "ORDERREF" are one),
the first of several candidates by ORDER_COLUMNS' (then STATUS_COLUMNS', TRACKING_COLUMNS')
order. Every other column is ignored.

Couriers' status words are read by `delivery_of_word` (the table is in its docstring); a word it
does not know is a problem row, never a guess. Which order a reference names is not this module's
job: calls/intake/delivery_sheets.py matches the references against the store's orders.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from django.utils.translation import gettext as _

from calls.intake.file_errors import ImportFileError
from calls.intake.files import CsvSource, sheet_rows
from calls.intake.storable_text import refused_character, storable
from calls.models import Order

# Header names as `_squeezed` leaves them (lower case, letters and digits only), best first.
ORDER_COLUMNS = (
    "orderid",
    "orderref",
    "orderrefno",
    "orderrefnumber",
    "orderreference",
    "orderreferenceno",
    "orderreferencenumber",
    "ordernumber",
    "orderno",
    "order",
    "shipmentreference",
    "customerreference",
    "customerref",
    "merchantreference",
    "shipperreference",
    "reference",
    "referenceno",
    "referencenumber",
    "ref",
    "refno",
    "refnumber",
)
STATUS_COLUMNS = (
    "deliverystatus",
    "parcelstatus",
    "shipmentstatus",
    "consignmentstatus",
    "bookedpacketstatus",
    "packetstatus",
    "trackingstatus",
    "currentstatus",
    "laststatus",
    "status",
    "orderstatus",
)
TRACKING_COLUMNS = (
    "trackingnumber",
    "trackingno",
    "trackingid",
    "tracking",
    "trackno",
    "tracknumber",
    "cn",
    "cnno",
    "cnnumber",
    "consignment",
    "consignmentno",
    "consignmentnumber",
    "consignmentnote",
    "awb",
    "awbno",
    "awbnumber",
)
# What an empty file is said to need (file_errors' "empty_file" sentence).
REQUIRED = "Order ID, Status"
# A value quoted back in a problem is cut here: a stray 30,000-character cell stays readable.
QUOTED_CHARS = 100
TRACKING_CHARS = Order._meta.get_field("tracking").max_length or 100

# Couriers' status words. Leading words that say only what the status is of are dropped first
# ("Shipment - In Transit" is "in transit").
_OF_WHAT = frozenset({"shipment", "parcel", "packet", "consignment", "order", "successfully"})
_SHIPPED_STARTS = (
    "shipped",
    "dispatched",
    "booked",
    "in transit",
    "out for delivery",
    "picked up",
    "picked by",
    "arrived at",
    "en route",
    "on route",
    "on the way",
)
_RETURN_WORDS = frozenset({"rto", "rts"})  # returned to origin, returned to shipper


def _squeezed(text: str) -> str:
    """`text` lower-cased with every character but letters and digits dropped (a BOM too)."""
    return "".join(char for char in text.lower() if char.isalnum())


def _words(text: str) -> list[str]:
    return re.sub(r"[^0-9a-z]+", " ", text.lower()).split()


@functools.lru_cache(maxsize=4096)  # a sheet has a handful of words, repeated on every row
def delivery_of_word(word: str) -> str | None:
    """The delivery state (Order.Delivery) a courier's status word says, or None if robodash
    does not know the word:

    - returned: any word containing "return" (Returned, Return to origin, Returned to shipper,
      Returned to vendor, Return in transit, Being return…), or RTO / RTS;
    - delivered: Delivered (Shipment delivered, Delivered to consignee…; not Undelivered);
    - shipped: Shipped, Dispatched, Booked, In transit, Out for delivery, Picked up, Arrived at
      (a station, a hub), En route.

    Anything else (Pending, Unbooked, Cancelled, Attempted, Lost…) is None: the row is listed,
    nothing is recorded for it."""
    words = _words(word)
    if any("return" in each or each in _RETURN_WORDS for each in words):
        return Order.Delivery.RETURNED
    while words and words[0] in _OF_WHAT:
        words.pop(0)
    if not words:
        return None
    if words[0] == "delivered":
        return Order.Delivery.DELIVERED
    phrase = " ".join(words)
    if any(phrase == start or phrase.startswith(start + " ") for start in _SHIPPED_STARTS):
        return Order.Delivery.SHIPPED
    return None


def _first_of(names: tuple[str, ...], squeezed: list[str]) -> int | None:
    for name in names:
        if name in squeezed:
            return squeezed.index(name)
    return None


def parcel_columns(header: list[str]) -> dict[str, int]:
    """The courier sheet's columns by role ("order", "status", optionally "tracking") -> their
    index; ImportFileError if the order or status column is missing."""
    squeezed = [_squeezed(cell) for cell in header]
    found = {
        role: index
        for role, names in (
            ("order", ORDER_COLUMNS),
            ("status", STATUS_COLUMNS),
            ("tracking", TRACKING_COLUMNS),
        )
        if (index := _first_of(names, squeezed)) is not None
    }
    missing = [role for role in ("order", "status") if role not in found]
    if missing:
        raise ImportFileError(
            "parcel_columns_missing",
            missing=missing,
            found=[cell.strip().lstrip("\ufeff")[:QUOTED_CHARS] for cell in header if cell.strip()],
        )
    return found


class Parcel(NamedTuple):
    """A row that says what became of an order's parcel; the reference is as the sheet has it
    (trimmed), to be matched against the store's order ids. A tuple of strings and numbers, which
    the garbage collector stops following: a sheet holds 100,000 of them."""

    row: int  # as a spreadsheet numbers it: the header is row 1
    ref: str
    delivery: str  # Order.Delivery
    tracking: str


@dataclass(frozen=True)
class ParcelProblem:
    """A row that is not used, and why: `code` a key of PROBLEMS, `params` its values (JSON-safe,
    to be stored); said in words by `describe_problem`."""

    row: int
    code: str
    params: Mapping[str, Any]


def _quoted(value: str) -> str:
    return storable(value)[:QUOTED_CHARS]


def _cell(cells: list[str], columns: dict[str, int], role: str) -> str:
    """The trimmed cell of `role`'s column ("" when the sheet has none, or the row is short)."""
    index = columns.get(role)
    return cells[index].strip() if index is not None and index < len(cells) else ""


def read_parcels(
    file: CsvSource, on_sheet_size: Callable[[int], None] | None = None
) -> Iterator[Parcel | ParcelProblem]:
    """Each non-blank data row of a courier's sheet (CSV or .xlsx), read: ImportFileError if the
    file as a whole is unusable (its header names no order or status column…); `on_sheet_size`
    as for calls.intake.files.sheet_rows."""
    rows = sheet_rows(file, parcel_columns, required=REQUIRED, on_sheet_size=on_sheet_size)
    for row, cells, columns, _width in rows:
        ref = _cell(cells, columns, "order")
        word = _cell(cells, columns, "status")
        tracking = _cell(cells, columns, "tracking")
        if not ref:
            yield ParcelProblem(row, "no_order", {})
        elif refused_character("order", ref) is not None:
            # No order id holds one (intake refuses them): no order to look for.
            yield ParcelProblem(row, "unknown_order", {"ref": _quoted(ref)})
        elif not word:
            yield ParcelProblem(row, "no_status", {"ref": _quoted(ref)})
        elif (delivery := delivery_of_word(word)) is None:
            yield ParcelProblem(row, "unknown_status", {"ref": _quoted(ref), "word": _quoted(word)})
        else:
            tracking = " ".join(storable(tracking).split())[:TRACKING_CHARS]
            yield Parcel(row, ref, delivery, tracking)


# code -> the sentence for its params, in the reader's language.
PROBLEMS = {
    "no_order": lambda p: _("no order id"),
    "no_status": lambda p: _("order %(ref)s: no status") % {"ref": p["ref"]},
    "unknown_status": lambda p: (
        _("order %(ref)s: “%(word)s” is not a parcel status robodash knows")
        % {"ref": p["ref"], "word": p["word"]}
    ),
    "unknown_order": lambda p: _("no order %(ref)s in this store") % {"ref": p["ref"]},
    "several_orders": lambda p: (
        _("%(ref)s matches several orders of this store (their ids differ only in case)")
        % {"ref": p["ref"]}
    ),
}


def describe_problem(code: str, params: Mapping[str, Any]) -> str:
    """A problem row's reason in the active language."""
    return PROBLEMS[code](params)
