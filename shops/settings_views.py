"""Settings → a store → Integrations (admins only): connect Shopify, WooCommerce or the
merchant's own site, see the webhook URL to paste and its topics, and what last came in and went
out, send a test order, make and revoke API tokens. Secrets are write-only; a signing secret or an
API token robodash makes is shown once, in the answer to the request that made it, and never
again."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from django.contrib import messages
from django.db.models import Count, Min
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from calls.intake.storable_text import refused_character
from calls.models import Store
from calls.permissions import SETTINGS, role_required
from shops import inbox
from shops.forms import FORMS, ApiTokenForm
from shops.models import ApiToken, ReceivedWebhook, ShopConnection, WriteBack
from shops.signatures import base64_hmac
from shops.urls_public import WEBHOOK_TOPICS, orders_api_url, webhook_url
from shops.views import HEADERS, receive_webhook

TEST_ORDER_WAIT_SECONDS = 10


def _taken_in(connection: ShopConnection, delivery_id: str) -> ReceivedWebhook:
    """The test order's delivery, taken in now as a worker would (the shop's earlier deliveries
    first), so the merchant sees at once what became of it; if a worker holds the shop's
    deliveries (the one its storing woke), it is waited for, a few seconds at most."""
    deadline = time.monotonic() + TEST_ORDER_WAIT_SECONDS
    while True:
        inbox.take_in_connection(connection.pk)
        row = ReceivedWebhook.objects.get(connection=connection, delivery_id=delivery_id)
        if row.processed_at is not None or time.monotonic() > deadline:
            return row
        time.sleep(0.1)


def _waiting(connection: ShopConnection) -> dict[str, Any] | None:
    waiting = ReceivedWebhook.objects.filter(connection=connection, processed_at__isnull=True)
    found = waiting.aggregate(count=Count("id"), since=Min("received_at"))
    return found if found["count"] else None


def _context(request: HttpRequest, store: Store, bound: dict[str, Any]) -> dict[str, Any]:
    connections = {c.kind: c for c in store.shop_connections.all()}
    cards = []
    for kind, form_class in FORMS.items():
        connection = connections.get(kind)
        form = bound.get(kind) or form_class(connection=connection, prefix=kind)
        last_out = (
            WriteBack.objects.filter(connection=connection).order_by("-id").first()
            if connection
            else None
        )
        cards.append(
            {
                "kind": kind,
                "label": ShopConnection.Kind(kind).label,
                "connection": connection,
                "form": form,
                "hook_url": (
                    webhook_url(connection, request) if connection and kind in HEADERS else ""
                ),
                "topics": WEBHOOK_TOPICS.get(ShopConnection.Kind(kind), ()),
                "last_out": last_out,
                "last_in": connection.last_received() if connection else None,
                # Deliveries stored and not taken in yet: a worker is behind, or none runs.
                "waiting": _waiting(connection) if connection else None,
                # Orders the shop sent that were not cash on delivery: acknowledged, counted.
                "not_cod": (
                    ReceivedWebhook.objects.filter(
                        connection=connection, outcome=ReceivedWebhook.Outcome.NOT_COD
                    ).count()
                    if connection
                    else 0
                ),
            }
        )
    return {
        "store": store,
        "cards": cards,
        "tokens": store.api_tokens.order_by("-created_at")[:50],
        "token_form": bound.get("token") or ApiTokenForm(),
        "orders_api_url": orders_api_url(request),
        "shown_once": bound.get("shown_once"),
    }


@role_required(SETTINGS)
def integrations(request: HttpRequest, pk: int) -> HttpResponse:
    store = get_object_or_404(Store, pk=pk)
    kind = request.POST.get("kind", "")
    if request.method == "POST" and kind in FORMS:
        connection = store.shop_connections.filter(kind=kind).first()
        form = FORMS[kind](request.POST, connection=connection, prefix=kind)
        if form.is_valid():
            connection = form.save(store)
            label = ShopConnection.Kind(kind).label
            if kind == ShopConnection.Kind.WEBHOOK and not connection.has_secret("signing_secret"):
                secret = "whsec_" + secrets.token_urlsafe(24)
                connection.set_secrets(signing_secret=secret)
                connection.save()
                shown = {"what": _("Signing secret for your webhook receiver"), "value": secret}
                return render(
                    request,
                    "settings/integrations.html",
                    _context(request, store, {"shown_once": shown}),
                )
            messages.success(request, _("%(what)s saved.") % {"what": label})
            return redirect("store_integrations", pk=store.pk)
        return render(request, "settings/integrations.html", _context(request, store, {kind: form}))
    return render(request, "settings/integrations.html", _context(request, store, {}))


@role_required(SETTINGS)
@require_POST
def api_token_new(request: HttpRequest, pk: int) -> HttpResponse:
    store = get_object_or_404(Store, pk=pk)
    form = ApiTokenForm(request.POST)
    if not form.is_valid():
        context = _context(request, store, {"token": form})
        return render(request, "settings/integrations.html", context)
    _record, token = ApiToken.issue(store, form.cleaned_data["name"])
    shown = {"what": _("API token (Authorization: Bearer …)"), "value": token}
    context = _context(request, store, {"shown_once": shown})
    return render(request, "settings/integrations.html", context)


@role_required(SETTINGS)
@require_POST
def api_token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=pk)
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        messages.success(
            request,
            _("Token %(prefix)s… revoked: it is refused from now on.") % {"prefix": token.prefix},
        )
    return redirect("store_integrations", pk=token.store_id)


def sample_order(kind: str, phone: str, cod: str) -> dict[str, Any]:
    """An order as the shop would send it, numbered from the clock so each one is new."""
    number = timezone.now().strftime("%H%M%S")
    if kind == ShopConnection.Kind.SHOPIFY:
        return {
            "id": int(timezone.now().timestamp() * 1000),
            "name": f"#TEST-{number}",
            "total_price": "1500.00",
            "payment_gateway_names": [cod],
            "shipping_address": {"phone": phone, "name": "Test order"},
        }
    return {
        "id": int(timezone.now().timestamp()),
        "number": f"TEST-{number}",
        "total": "1500.00",
        "payment_method": cod,
        "billing": {"first_name": "Test", "last_name": "order", "phone": phone},
    }


@role_required(SETTINGS)
@require_POST
def send_test_order(request: HttpRequest, pk: int) -> HttpResponse:
    """A sample order, signed with the connection's own secret, through the very path a shop's
    webhook takes: what a merchant sees happen is what a real order will do."""
    store = get_object_or_404(Store, pk=pk)
    kind = request.POST.get("kind", "")
    connection = store.shop_connections.filter(kind=kind).first()
    phone = request.POST.get("phone", "").strip()
    if connection is None or kind not in HEADERS:
        messages.error(request, _("Connect the shop first."))
        return redirect("store_integrations", pk=store.pk)
    if not phone:
        messages.error(request, _("Give the mobile number the test order should call."))
        return redirect("store_integrations", pk=store.pk)
    refused = refused_character("phone", phone)
    if refused is not None:
        messages.error(
            request,
            _(
                "The mobile number holds a character no number has (%(code)s at position "
                "%(position)s): type it again."
            )
            % {"code": refused.code, "position": refused.position},
        )
        return redirect("store_integrations", pk=store.pk)
    payload = sample_order(kind, phone, connection.cod_methods[0])
    body = json.dumps(payload).encode()
    names = HEADERS[ShopConnection.Kind(kind)]
    headers = {
        names["signature"]: base64_hmac(body, connection.secret("webhook_secret")),
        names["topic"]: "orders/create" if kind == "shopify" else "order.created",
        names["delivery"]: f"robodash-test-{payload['id']}",
    }
    answer = json.loads(receive_webhook(connection, body, headers).content)
    if answer["result"] == "accepted":
        row = _taken_in(connection, headers[names["delivery"]])
        answer = {"result": row.outcome or "accepted", "message": row.result or answer["message"]}
    level = messages.SUCCESS if answer["result"] == "queued" else messages.WARNING
    messages.add_message(
        request, level, _("Test order: %(answer)s") % {"answer": answer["message"]}
    )
    return redirect("store_integrations", pk=store.pk)
