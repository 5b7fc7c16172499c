"""The webhooks shops send: a new order becomes an Order and its call; a cancelled one is
withdrawn if its call has not gone out yet (cancelled by its body, not by the unsigned topic).

Each request is checked before anything else: the store must have that shop connected, and the
body must carry the shop's HMAC signature under the connection's webhook secret (compared in
constant time, on the raw bytes, before the body is parsed). A bad or missing signature is a 401
and nothing is stored. Then the delivery's own id is recorded, so a delivery the shop sends again
(it retries until it hears 200) changes nothing; the answer comes as soon as the order is stored,
well within Shopify's five seconds: the call itself goes through the pipeline.

News of a parcel (a Shopify fulfillment, a WooCommerce order's new status: shops/payloads.py)
is recorded by calls.transitions.record_delivery, whose rule decides which update wins: a repeat
or an older update changes nothing. A WooCommerce status robodash set itself (its write-back of
a decision) is recognised and ignored: a cancelled order that robodash marked `failed` was not
returned. An order the store does not have, or news that says nothing of the parcel, is
answered `ignored` with the reason, and nothing changes.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from calls.intake.storable_text import storable
from calls.models import Call, Order
from calls.notices import queue_notice
from calls.permissions import CALL_ACTIONS, role_required
from calls.transitions import DeliveryVerdict, record_delivery, withdraw, withdraw_uncalled
from shops import outbox
from shops.intake import Received, receive_order
from shops.models import ReceivedWebhook, ShopConnection, WriteBack
from shops.payloads import (
    DeliveryNews,
    UnreadableOrder,
    shopify_fulfillment,
    shopify_order,
    woo_status_slug,
    woocommerce_order,
    woocommerce_order_update,
)
from shops.signatures import base64_hmac_is_valid

log = logging.getLogger(__name__)


def _connection(store_id: int, kind: str) -> ShopConnection | None:
    return (
        ShopConnection.objects.select_related("store").filter(store_id=store_id, kind=kind).first()
    )


def _answer(result: str, message: str, status: int = 200) -> JsonResponse:
    return JsonResponse({"result": result, "message": message}, status=status)


# What each shop calls its headers.
HEADERS = {
    ShopConnection.Kind.SHOPIFY: {
        "signature": "X-Shopify-Hmac-Sha256",
        "topic": "X-Shopify-Topic",
        "delivery": "X-Shopify-Webhook-Id",
    },
    ShopConnection.Kind.WOOCOMMERCE: {
        "signature": "X-WC-Webhook-Signature",
        "topic": "X-WC-Webhook-Topic",
        "delivery": "X-WC-Webhook-Delivery-ID",
    },
}


def receive_webhook(
    connection: ShopConnection, body: bytes, headers: Mapping[str, str]
) -> JsonResponse:
    """A shop's webhook, checked, counted once and acted on: the views' work, and the path
    the Integrations page's test order takes too."""
    names = HEADERS[ShopConnection.Kind(connection.kind)]
    if not base64_hmac_is_valid(
        body, headers.get(names["signature"]), connection.secret("webhook_secret")
    ):
        return _answer("refused", f"bad or missing {names['signature']}", status=401)
    # Headers are text the shop chose too: kept storable, like the body's
    # (calls.intake.storable_text).
    topic = storable(headers.get(names["topic"], ""))
    delivery = storable(headers.get(names["delivery"], "").strip()[:200]) or (
        # Without the shop's id of the delivery, the body's digest: an exact resend.
        "sha256:" + hashlib.sha256(body).hexdigest()
    )
    with transaction.atomic():
        try:
            with transaction.atomic():
                record = ReceivedWebhook.objects.create(
                    connection=connection, delivery_id=delivery, topic=topic[:100]
                )
        except IntegrityError:
            return _answer("duplicate", f"delivery {delivery} was received already")
        try:
            received = _act(connection, topic, _parsed(body))
        except UnreadableOrder as error:
            record.result = f"unreadable: {error}"
            record.save(update_fields=["result"])
            return _answer("refused", str(error), status=400)
        # The delivery's row is the shop's last webhook on the Integrations page too: no
        # shared row is updated per order, so concurrent webhooks never wait on each other.
        record.result = received.message[:300]
        record.save(update_fields=["result"])
    log.info("%s webhook for store %s: %s", connection.kind, connection.store_id, received.outcome)
    return _answer(received.outcome, received.message)


def _parsed(body: bytes) -> object:
    """The JSON in `body`; UnreadableOrder if there is none robodash can read."""
    try:
        return json.loads(body)
    except ValueError:  # not JSON, or not UTF-8 (UnicodeDecodeError is a ValueError)
        raise UnreadableOrder("the body is not JSON") from None
    except RecursionError:  # nested deeper than the parser's recursion limit
        raise UnreadableOrder("the body's JSON is nested too deeply to read") from None


def _act(connection: ShopConnection, topic: str, payload: object) -> Received:
    store, kind = connection.store, connection.kind
    read = shopify_order if kind == ShopConnection.Kind.SHOPIFY else woocommerce_order
    if topic in ("orders/create", "order.created"):
        return receive_order(store, read(payload, connection.cod_methods), kind)
    if topic in ("orders/cancelled", "order.deleted"):
        order = read(payload, connection.cod_methods)
        if not order.cancelled:  # the topic is not signed, the body is: see shops/payloads.py
            return Received(
                "ignored", None, f"order {order.order_id} is not cancelled in the body sent"
            )
        return _withdraw(store.pk, order.order_id)
    if kind == ShopConnection.Kind.SHOPIFY and topic in FULFILLMENT_TOPICS:
        news = shopify_fulfillment(payload, created=topic == "fulfillments/create")
        return _record_delivery(connection, news)
    if kind == ShopConnection.Kind.WOOCOMMERCE and topic == "order.updated":
        mapping = (
            connection.delivery_statuses if isinstance(connection.delivery_statuses, dict) else {}
        )
        return _record_delivery(connection, woocommerce_order_update(payload, mapping))
    return Received("ignored", None, f"topic {topic or '(none)'} is not one robodash acts on")


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


def _record_delivery(connection: ShopConnection, news: DeliveryNews) -> Received:
    """The parcel of the order the shop's news is about, recorded as record_delivery rules."""
    # Only the orders that came from this shop carry its ids (another shop's may collide).
    order = Order.objects.filter(
        store_id=connection.store_id, source=connection.kind, shop_ref=news.shop_order_id
    ).first()
    if order is None:
        return Received("ignored", None, f"order id {news.shop_order_id} is not known here")
    name = f"order {order.order_id}"
    if connection.kind == ShopConnection.Kind.WOOCOMMERCE and _robodash_set_status(
        connection, order, news.status
    ):
        return Received("ignored", order, f"{name}: {news.said} is robodash's own write-back")
    if not news.delivery:
        return Received("ignored", order, f"{name}: {news.said} says nothing of the parcel")
    # A shop's clock ahead of robodash's must not date news later than any that follows it.
    at = min(news.at, timezone.now()) if news.at is not None else None
    verdict = record_delivery(
        order,
        news.delivery,
        via=DELIVERY_VIA[ShopConnection.Kind(connection.kind)],
        at=at,
        tracking=news.tracking,
    )
    if verdict != DeliveryVerdict.APPLIED:
        why = NOT_APPLIED[DeliveryVerdict(verdict)]
        return Received("ignored", order, f"{name}: {news.delivery} ({news.said}): {why}")
    return Received("recorded", order, f"{name}: {news.delivery} ({news.said})")


def _robodash_set_status(connection: ShopConnection, order: Order, status: str) -> bool:
    """Whether `status` is one robodash's write-back sets on `order`: the connection's status
    for the decision it last queued or last told the shop (a change of decision in flight)."""
    told = (
        WriteBack.objects.filter(order=order, connection=connection)
        .values_list("event", "told_event")
        .first()
    )
    mapping = connection.status_mapping if isinstance(connection.status_mapping, dict) else {}
    set_by_robodash = {woo_status_slug(str(mapping.get(event) or "")) for event in told or ()}
    return woo_status_slug(status) in set_by_robodash - {""}


def _withdraw(store_id: int, order_id: str) -> Received:
    """The shop cancelled the order: its queued calls are withdrawn (a queued notice too: the
    customer is not told of a parcel that will not come) and the store's cancelled notice is
    queued (calls/notices.py), in the webhook's transaction."""
    order = Order.objects.filter(store_id=store_id, order_id=order_id).first()
    if order is None:
        return Received("ignored", None, f"order {order_id} is not known here")
    # Not the cancelled notice itself, queued when the shop first said so: a resend keeps it.
    queued = order.calls.filter(state=Call.State.QUEUED).exclude(notice_of=Call.NoticeOf.CANCELLED)
    withdrawn = [c for c in queued if withdraw(c, None)]
    # Skipped or held by the store's rules: never rung, so not rung to hear it is cancelled.
    uncalled = withdraw_uncalled(order)
    if not uncalled:
        queue_notice(order, Call.NoticeOf.CANCELLED)
    if uncalled or any(call.purpose == Call.Purpose.VERIFY for call in withdrawn):
        return Received("withdrawn", order, f"order {order_id} cancelled in the shop: not called")
    return Received("too_late", order, f"order {order_id} cancelled in the shop after its call")


@csrf_exempt
@login_not_required
@require_POST
def shopify_webhook(request: HttpRequest, store_id: int) -> JsonResponse:
    connection = _connection(store_id, ShopConnection.Kind.SHOPIFY)
    if connection is None:
        return _answer("refused", "this store has no Shopify connection", status=404)
    return receive_webhook(connection, request.body, request.headers)


@csrf_exempt
@login_not_required
@require_POST
def woocommerce_webhook(request: HttpRequest, store_id: int) -> JsonResponse:
    connection = _connection(store_id, ShopConnection.Kind.WOOCOMMERCE)
    if connection is None:
        return _answer("refused", "this store has no WooCommerce connection", status=404)
    if "X-WC-Webhook-Signature" not in request.headers and request.POST.get("webhook_id"):
        # WooCommerce pings a webhook, unsigned, when it is saved: say it is reachable. Anyone
        # can send this, so it is counted, not stored.
        connection.count_ping()
        return _answer("ping", "robodash is listening")
    return receive_webhook(connection, request.body, request.headers)


@role_required(CALL_ACTIONS)
@require_POST
def write_back_retry(request: HttpRequest, pk: int) -> HttpResponse:
    """A person's Retry of a write-back that failed: a new day of tries, starting now."""
    row = get_object_or_404(WriteBack, pk=pk)
    if outbox.retry(row):
        outbox.wake_outbox()
        messages.success(request, _("Sending it to the shop again."))
    else:
        messages.warning(request, _("That write-back is not failed (any more): nothing to retry."))
    return redirect("order_detail", pk=row.order_id)
