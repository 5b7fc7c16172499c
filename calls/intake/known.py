"""The orders a store already has, and the lock that keeps two intakes from both adding one.

An order id the store already has (from any campaign, file, the form or a shop) is "already
known" and places no call: an order is called automatically at most once, so files that overlap
yesterday's are harmless.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import connection
from django.utils.translation import gettext as _

from calls.models import Order, Store

# pg_advisory_xact_lock(INTAKE_LOCK, store id): one bulk intake of orders per store at a time (an
# import, a batch of a launch), so two cannot both find an order id new and both insert it. A
# single order (the form, a shop's webhook, the API) takes the lock shared: single orders do not
# wait for each other, only for a bulk intake, and the unique order_unique_per_store index sorts
# out two single orders with the same id (the second is "already known").
INTAKE_LOCK = 0x4F524453  # "ORDS"


def known_reason(status: str, since: dt.datetime, store: Store) -> str:
    """Why an order id places no call, worded once for the pages, the commands and the shops:
    "already known (confirmed, since 2025-05-01)", from the known order's status and the day the
    store got it, in the store's zone."""
    return _("already known (%(status)s, since %(day)s)") % {
        "status": str(Order.Status(status).label).lower(),
        "day": f"{since.astimezone(store.zone):%Y-%m-%d}",
    }


@dataclass(frozen=True)
class KnownRow:
    """A row of a file whose order id the store already has: no call is placed for it."""

    row: int
    order_id: str
    reason: str  # known_reason()

    def __str__(self) -> str:
        return f"row {self.row}: order {self.order_id!r} {self.reason}, not called again"


def known_orders(store: Store, order_ids: list[str]) -> dict[str, tuple[str, dt.datetime]]:
    """Which of `order_ids` `store` already has: order id -> (status, created_at). Served by the
    unique index order_unique_per_store (store, order_id)."""
    # One array parameter: an IN list of 2,000 costs several times more to build and plan.
    meta, quote = Order._meta, connection.ops.quote_name
    column = {f.name: quote(f.column) for f in meta.concrete_fields}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {column['order_id']}, {column['status']}, {column['created_at']} "
            f"FROM {quote(meta.db_table)} "
            f"WHERE {column['store']} = %s AND {column['order_id']} = ANY(%s)",
            [store.pk, order_ids],
        )
        return {order_id: (status, at) for order_id, status, at in cursor.fetchall()}


def lock_intake(store: Store, *, shared: bool = False) -> None:
    """Take the store's intake lock until the transaction ends (see INTAKE_LOCK)."""
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}(%s, %s)", [INTAKE_LOCK, store.pk])


class OrderAlreadyKnown(ValidationError):
    """The store already has this order id: no second call. A ValidationError on `order_id`
    (the form and the API show it as one) that carries the order, so a caller that treats a
    repeat as a success (a shop re-sending it) has it without reading the message."""

    def __init__(self, order: Order, message: str) -> None:
        super().__init__({"order_id": message})
        self.order = order


def already_known(store: Store, order_id: str) -> OrderAlreadyKnown:
    order = Order.objects.get(store=store, order_id=order_id)
    return OrderAlreadyKnown(
        order,
        _("order %(order_id)s is %(reason)s; it is not called again")
        % {
            "order_id": repr(order_id),
            "reason": known_reason(order.status, order.created_at, store),
        },
    )
