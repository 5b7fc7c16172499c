"""The webhooks shops send: checked, stored and answered here; taken in by a worker.

Each request is checked before anything else: the store must have that shop connected, and the
body must carry the shop's HMAC signature under the connection's webhook secret (compared in
constant time, on the raw bytes, before the body is parsed). A bad or missing signature is a 401
and nothing is stored. A body robodash cannot read (not JSON, an order without an id) is a 400
with the reason. Then the delivery is stored under its own id, so one the shop sends again (it
retries until it hears 200) changes nothing, and answered: a worker makes it an order, a
withdrawal or a parcel's news (shops/inbox.py), in the order the shop's deliveries arrived. If
the database cannot store it, the answer is a 503 (robodash/server_errors.py) and the shop sends
it again.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.db import IntegrityError
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from calls.intake.storable_text import storable
from calls.permissions import CALL_ACTIONS, role_required
from shops import inbox, outbox
from shops.models import ReceivedWebhook, ShopConnection, WriteBack
from shops.payloads import UnreadableOrder
from shops.signatures import base64_hmac_is_valid

# The busiest lookup there is at a sale's peak, of settings that seldom change: each process keeps
# a store's connection for a few seconds (a save in the same process forgets it at once). A secret
# rotated or a connection removed in another process takes effect within them: a delivery
# meanwhile is refused or answered 404, and the shop sends it again.
CONNECTION_SECONDS = 5.0
_connections: dict[tuple[int, str], tuple[float, ShopConnection | None]] = {}


def _connection(store_id: int, kind: str) -> ShopConnection | None:
    key, now = (store_id, kind), time.monotonic()
    kept = _connections.get(key)
    if kept is not None and now - kept[0] < CONNECTION_SECONDS:
        return kept[1]
    # Not its store: the worker that takes the delivery in loads that (shops/inbox.py).
    found = ShopConnection.objects.filter(store_id=store_id, kind=kind).first()
    _connections[key] = (now, found)
    return found


@receiver(post_save, sender=ShopConnection)
@receiver(post_delete, sender=ShopConnection)
def forget_connections(**kwargs: object) -> None:
    _connections.clear()


def _answer(result: str, message: str, status: int = 200, **more: str) -> JsonResponse:
    return JsonResponse({"result": result, "message": message, **more}, status=status)


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
    """A shop's webhook, checked, stored once and answered: the views' work, and the path the
    Integrations page's test order takes too. "accepted" means a worker takes it in."""
    names = HEADERS[ShopConnection.Kind(connection.kind)]
    if not base64_hmac_is_valid(
        body, headers.get(names["signature"]), connection.secret("webhook_secret")
    ):
        return _answer("refused", f"bad or missing {names['signature']}", status=401)
    # Headers are text the shop chose too: kept storable, like the body's
    # (calls.intake.storable_text).
    topic = storable(headers.get(names["topic"], ""))[:100]
    delivery = storable(headers.get(names["delivery"], "").strip()[:200]) or (
        # Without the shop's id of the delivery, the body's digest: an exact resend.
        "sha256:" + hashlib.sha256(body).hexdigest()
    )
    record = ReceivedWebhook(connection=connection, delivery_id=delivery, topic=topic)
    try:
        news = inbox.read_delivery(connection, topic, inbox.parse_body(body))
    except UnreadableOrder as error:
        # Kept, done, without its body: the Integrations page shows the shop's last delivery.
        answer_now: tuple[int, str, str] | None = (400, "refused", str(error))
        record.outcome, record.result = ReceivedWebhook.Outcome.UNREADABLE, str(error)[:300]
    else:
        settled = inbox.settled_on_reading(news)
        if settled is not None:
            answer_now = (200, settled.outcome, settled.message)
            record.outcome, record.result = settled.outcome, settled.message[:300]
        else:
            answer_now = None
            record.body = body
    if answer_now is not None:
        record.processed_at = timezone.now()
    try:
        new = record.insert_once()
    except IntegrityError:  # the connection was removed a moment ago (see CONNECTION_SECONDS)
        forget_connections()
        return _answer("refused", "this store's shop connection was removed", status=404)
    if not new:
        return _answer("duplicate", f"delivery {delivery} was received already", delivery=delivery)
    if answer_now is not None:
        status, result, message = answer_now
        return _answer(result, message, status=status)
    inbox.wake_inbox()
    return _answer(
        "accepted", f"delivery {delivery} received: robodash takes it in next", delivery=delivery
    )


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
