"""The shops' webhooks, taken in by a worker: what each delivery says, made an order, a
withdrawal or a parcel's news.

The web process only checks a delivery (signature, JSON, a payload robodash can read), stores it
(ReceivedWebhook, with its body) and answers: about what a plain page costs, so a sale's peak
is answered well within Shopify's five seconds. It then wakes the inbox; a worker takes the
waiting deliveries in (`take_in_waiting`), and beat's sweep finds any a lost wake left behind,
so a delivery that arrives while no worker runs is taken in when one comes back.

Order. Each connection's deliveries are taken in the order they arrived, by one worker at a time
(a session advisory lock per connection), each in a transaction of its own with its row marked
done: a worker lost mid-way leaves the row waiting, and the next one takes it again. A shop can
still send a cancellation before the order it cancels (or its create can be the one lost and
retried): the cancellation is kept (EarlyCancellation) and the order is withdrawn as it is made
(shops/intake.py).

A delivery that fails unexpectedly (the database went away mid-way, a bug) is tried again at
the next wake or sweep; after MAX_ATTEMPTS it is set aside as failed, its body kept, so one bad
delivery cannot hold up the shop's others.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from dataclasses import dataclass

from django.core.cache import cache
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.db.models import F
from django.utils import timezone

from calls.models import Order
from calls.transitions import DeliveryVerdict, record_delivery
from robodash.celery import enqueue
from shops.intake import Received, not_cod, receive_order, withdraw_order
from shops.models import ReceivedWebhook, ShopConnection, WriteBack
from shops.payloads import (
    DeliveryNews,
    IncomingOrder,
    UnreadableOrder,
    shopify_fulfillment,
    shopify_order,
    woo_status_slug,
    woocommerce_order,
    woocommerce_order_update,
)

log = logging.getLogger(__name__)

# pg_try_advisory_lock(INBOX_LOCK, connection id): one worker takes a connection's deliveries in.
INBOX_LOCK = 0x53484F50  # "SHOP"
MAX_ATTEMPTS = 5
BATCH = 100  # deliveries per connection before the others get a turn
# A wake is sent once while this key lives: a burst of deliveries wakes the inbox once. The worker
# deletes it before it looks for waiting deliveries, so one stored after that look wakes it again.
WAKE_KEY = "robodash:inbox-wake"
# A task hands on to a new one after this long, well inside its time limit (shops/tasks.py).
TASK_BUDGET_SECONDS = 40

ORDER_TOPICS = ("orders/create", "order.created")
CANCEL_TOPICS = ("orders/cancelled", "order.deleted")
FULFILLMENT_TOPICS = ("fulfillments/create", "fulfillments/update")
DELIVERY_VIA = {
    ShopConnection.Kind.SHOPIFY: Order.DeliveryVia.SHOPIFY,
    ShopConnection.Kind.WOOCOMMERCE: Order.DeliveryVia.WOOCOMMERCE,
}
# Answered for an update record_delivery did not apply (its DeliveryVerdict).
NOT_APPLIED = {
    DeliveryVerdict.REPEAT: "already known",
    DeliveryVerdict.BACKWARDS: "the parcel is further along already",
    DeliveryVerdict.NOT_LATER: "not later than what is known",
}


@dataclass(frozen=True)
class ShopNews:
    """What one delivery says, read without the database: a new order, a cancellation, news of
    a parcel, or nothing robodash acts on (`ignored` says why)."""

    order: IncomingOrder | None = None
    cancelled: IncomingOrder | None = None
    parcel: DeliveryNews | None = None
    ignored: str = ""


def parse_body(body: bytes) -> object:
    """The JSON in `body`; UnreadableOrder if there is none robodash can read."""
    try:
        return json.loads(body)
    except ValueError:  # not JSON, or not UTF-8 (UnicodeDecodeError is a ValueError)
        raise UnreadableOrder("the body is not JSON") from None
    except RecursionError:  # nested deeper than the parser's recursion limit
        raise UnreadableOrder("the body's JSON is nested too deeply to read") from None


def read_delivery(shop: ShopConnection, topic: str, payload: object) -> ShopNews:
    """What the delivery says (UnreadableOrder if its payload cannot be read as its topic's)."""
    kind = shop.kind
    read = shopify_order if kind == ShopConnection.Kind.SHOPIFY else woocommerce_order
    if topic in ORDER_TOPICS:
        return ShopNews(order=read(payload, shop.cod_methods))
    if topic in CANCEL_TOPICS:
        order = read(payload, shop.cod_methods)
        if not order.cancelled:  # the topic is not signed, the body is: see shops/payloads.py
            return ShopNews(ignored=f"order {order.order_id} is not cancelled in the body sent")
        return ShopNews(cancelled=order)
    if kind == ShopConnection.Kind.SHOPIFY and topic in FULFILLMENT_TOPICS:
        return ShopNews(parcel=shopify_fulfillment(payload, created=topic == "fulfillments/create"))
    if kind == ShopConnection.Kind.WOOCOMMERCE and topic == "order.updated":
        mapping = shop.delivery_statuses if isinstance(shop.delivery_statuses, dict) else {}
        return ShopNews(parcel=woocommerce_order_update(payload, mapping))
    return ShopNews(ignored=f"topic {topic or '(none)'} is not one robodash acts on")


def settled_on_reading(news: ShopNews) -> Received | None:
    """What a delivery comes to when that needs no database (the web process answers it at
    once): nothing robodash acts on, or an order that is not cash on delivery."""
    if news.ignored:
        return Received("ignored", None, news.ignored)
    if news.order is not None and not news.order.cash_on_delivery:
        return not_cod(news.order)
    return None


def act_on(shop: ShopConnection, news: ShopNews, *, arrived_at: dt.datetime) -> Received:
    """The delivery's news applied: the order made (arrived when the delivery was received,
    however much later it is taken in), withdrawn, or its parcel recorded."""
    if news.order is not None:
        return receive_order(shop.store, news.order, shop.kind, arrived_at=arrived_at)
    if news.cancelled is not None:
        return withdraw_order(shop.store, news.cancelled.order_id)
    if news.parcel is not None:
        return _record_parcel(shop, news.parcel)
    return Received("ignored", None, news.ignored)


def _record_parcel(shop: ShopConnection, news: DeliveryNews) -> Received:
    """The parcel of the order the shop's news is about, recorded as record_delivery rules."""
    # Only the orders that came from this shop carry its ids (another shop's may collide).
    order = Order.objects.filter(
        store_id=shop.store_id, source=shop.kind, shop_ref=news.shop_order_id
    ).first()
    if order is None:
        return Received("ignored", None, f"order id {news.shop_order_id} is not known here")
    name = f"order {order.order_id}"
    if shop.kind == ShopConnection.Kind.WOOCOMMERCE and _robodash_set_status(
        shop, order, news.status
    ):
        return Received("ignored", order, f"{name}: {news.said} is robodash's own write-back")
    if not news.delivery:
        return Received("ignored", order, f"{name}: {news.said} says nothing of the parcel")
    # A shop's clock ahead of robodash's must not date news later than any that follows it.
    at = min(news.at, timezone.now()) if news.at is not None else None
    verdict = record_delivery(
        order,
        news.delivery,
        via=DELIVERY_VIA[ShopConnection.Kind(shop.kind)],
        at=at,
        tracking=news.tracking,
    )
    if verdict != DeliveryVerdict.APPLIED:
        why = NOT_APPLIED[DeliveryVerdict(verdict)]
        return Received("ignored", order, f"{name}: {news.delivery} ({news.said}): {why}")
    return Received("recorded", order, f"{name}: {news.delivery} ({news.said})")


def _robodash_set_status(shop: ShopConnection, order: Order, status: str) -> bool:
    """Whether `status` is one robodash's write-back sets on `order`: the connection's status
    for the decision it last queued or last told the shop (a change of decision in flight)."""
    told = (
        WriteBack.objects.filter(order=order, connection=shop)
        .values_list("event", "told_event")
        .first()
    )
    mapping = shop.status_mapping if isinstance(shop.status_mapping, dict) else {}
    set_by_robodash = {woo_status_slug(str(mapping.get(event) or "")) for event in told or ()}
    return woo_status_slug(status) in set_by_robodash - {""}


# --- The worker's part ---------------------------------------------------------------------------


def wake_inbox() -> None:
    """Take the delivery just stored in now rather than at the next sweep; if the broker or the
    cache is down, the sweep will."""
    try:
        if cache.add(WAKE_KEY, 1, timeout=60):
            enqueue("shops.tasks.take_in_webhooks")
    except Exception as exc:
        log.warning("inbox: could not wake a worker (%s); the sweep will", type(exc).__name__)


def take_in_waiting(budget_seconds: float = TASK_BUDGET_SECONDS) -> int:
    """Take in every waiting delivery, connection by connection; how many were taken in.

    Deliveries of a connection another worker is taking in are left to it. Past the budget, a
    new task carries on (a long backlog after an outage is not cut by the task's time limit)."""
    started = time.monotonic()
    taken = 0
    while True:
        try:
            cache.delete(WAKE_KEY)
        except Exception as exc:  # no cache: wakes cannot be told apart, the sweep still comes
            log.warning("inbox: could not reach the cache (%s)", type(exc).__name__)
        waiting = list(
            ReceivedWebhook.objects.filter(processed_at__isnull=True)
            .values_list("connection_id", flat=True)
            .distinct()[:100]
        )
        moved = 0
        for connection_id in waiting:
            moved += take_in_connection(connection_id)
            if time.monotonic() - started > budget_seconds:
                wake_inbox()
                return taken + moved
        taken += moved
        if not moved:
            return taken


def take_in_connection(connection_id: int, limit: int = BATCH) -> int:
    """Up to `limit` of one connection's waiting deliveries, oldest first; 0 if another worker
    holds the connection. Stops at a delivery that failed, so none is taken in before it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [INBOX_LOCK, connection_id])
        if not cursor.fetchone()[0]:
            return 0
    try:
        shop = ShopConnection.objects.select_related("store").filter(pk=connection_id).first()
        if shop is None:  # removed since; its deliveries went with it
            return 0
        ids = list(
            ReceivedWebhook.objects.filter(connection=shop, processed_at__isnull=True)
            .order_by("id")
            .values_list("id", flat=True)[:limit]
        )
        taken = 0
        for delivery_id in ids:
            if not take_in(shop, delivery_id):
                break
            taken += 1
        return taken
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [INBOX_LOCK, connection_id])
        except DatabaseError:  # the connection is gone, and the session's lock with it
            close_old_connections()


def take_in(shop: ShopConnection, delivery_id: int) -> bool:
    """One waiting delivery taken in, in one transaction with its row marked done; False if it
    failed and is to be tried again later."""
    try:
        with transaction.atomic():
            row = (
                ReceivedWebhook.objects.select_for_update()
                .filter(pk=delivery_id, processed_at__isnull=True)
                .first()
            )
            if row is None:  # taken in already
                return True
            try:
                news = read_delivery(shop, row.topic, parse_body(bytes(row.body)))
                received = act_on(shop, news, arrived_at=row.received_at)
            except UnreadableOrder as error:  # the shop's settings changed since it was read
                received = Received("unreadable", None, str(error))
            row.outcome, row.result = received.outcome, received.message[:300]
            row.processed_at, row.body = timezone.now(), b""
            row.save(update_fields=["outcome", "result", "processed_at", "body"])
    except Exception as error:
        # Its type only: a message may quote the customer's details (the body is kept).
        log.warning(
            "inbox: delivery %s of connection %s failed (%s)",
            delivery_id,
            shop.pk,
            type(error).__name__,
        )
        return _count_failure(delivery_id, type(error).__name__)
    log.info("%s webhook for store %s: %s", shop.kind, shop.store_id, received.outcome)
    return True


def _count_failure(delivery_id: int, error: str) -> bool:
    """One more failed try; past MAX_ATTEMPTS the delivery is set aside (True: go on)."""
    close_old_connections()  # a broken connection is replaced, not reused
    try:
        ReceivedWebhook.objects.filter(pk=delivery_id).update(attempts=F("attempts") + 1)
        set_aside = ReceivedWebhook.objects.filter(
            pk=delivery_id, processed_at__isnull=True, attempts__gte=MAX_ATTEMPTS
        ).update(
            processed_at=timezone.now(),
            outcome=ReceivedWebhook.Outcome.FAILED,
            result=f"could not be taken in after {MAX_ATTEMPTS} tries ({error})",
        )
    except DatabaseError:  # the database is away: the sweep tries again when it is back
        close_old_connections()
        return False
    return bool(set_aside)
