"""The addresses a shop is told to send its webhooks to, as a merchant pastes them: the routes'
own paths (reverse()), on the address merchants reach robodash at.

That address is ROBODASH_PUBLIC_URL when it is set. Unset, a page uses the address it was itself
opened at: behind Caddy, the site's host (Caddy passes the Host header on) and https (its
X-Forwarded-Proto, trusted with ROBODASH_BEHIND_TLS_PROXY), so the Integrations page shows what
the admin's own browser reaches. A command has no request: unset, it prints the path and says
that the address belongs in front of it, rather than an address that may be wrong.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse

from shops.models import ShopConnection

# The view each kind of shop posts its webhooks to (an outgoing-only connection has none).
WEBHOOK_VIEWS = {
    ShopConnection.Kind.SHOPIFY: "shopify_webhook",
    ShopConnection.Kind.WOOCOMMERCE: "woocommerce_webhook",
}
# The topics to register with that address, each read by shops.inbox.read_delivery: what
# connect_shop prints and the Integrations page shows.
WEBHOOK_TOPICS = {
    ShopConnection.Kind.SHOPIFY: (
        "orders/create",
        "orders/cancelled",
        "fulfillments/create",
        "fulfillments/update",
    ),
    ShopConnection.Kind.WOOCOMMERCE: ("order.created", "order.deleted", "order.updated"),
}
UNSET_NOTE = (
    "ROBODASH_PUBLIC_URL is not set, so this is only the path: put the address merchants reach "
    "robodash at in front of it (e.g. https://robodash.example.com), or set ROBODASH_PUBLIC_URL "
    "to have it printed whole."
)


def _public(path: str, request: HttpRequest | None) -> str:
    if settings.ROBODASH_PUBLIC_URL:
        return settings.ROBODASH_PUBLIC_URL.rstrip("/") + path
    if request is not None:
        return request.build_absolute_uri(path)
    return path


def webhook_url(connection: ShopConnection, request: HttpRequest | None = None) -> str:
    """Where the shop posts its order webhooks (a path alone when neither the setting nor a
    request says where robodash is)."""
    view = WEBHOOK_VIEWS[ShopConnection.Kind(connection.kind)]
    return _public(reverse(view, kwargs={"store_id": connection.store_id}), request)


def orders_api_url(request: HttpRequest | None = None) -> str:
    return _public(reverse("orders_api:create_order"), request)


def unset_note() -> str:
    """What a command adds under a path it could not make whole ("" when the setting is set)."""
    return "" if settings.ROBODASH_PUBLIC_URL else UNSET_NOTE
