"""The addresses a shop is told to send its webhooks to, as a merchant pastes them: the routes'
own paths (reverse()), on the public address robodash is reached at."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse

from shops.models import ShopConnection

# The view each kind of shop posts its webhooks to (an outgoing-only connection has none).
WEBHOOK_VIEWS = {
    ShopConnection.Kind.SHOPIFY: "shopify_webhook",
    ShopConnection.Kind.WOOCOMMERCE: "woocommerce_webhook",
}


def _public(path: str) -> str:
    return settings.ROBODASH_PUBLIC_URL.rstrip("/") + path


def webhook_url(connection: ShopConnection) -> str:
    """Where the shop posts its order webhooks."""
    view = WEBHOOK_VIEWS[ShopConnection.Kind(connection.kind)]
    return _public(reverse(view, kwargs={"store_id": connection.store_id}))


def orders_api_url() -> str:
    return _public(reverse("orders_api:create_order"))
