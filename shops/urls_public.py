"""The addresses a shop is told to send its webhooks to, as a merchant pastes them."""

from __future__ import annotations

from django.conf import settings

from shops.models import ShopConnection


def webhook_url(connection: ShopConnection) -> str:
    """Where the shop posts its order webhooks (none for an outgoing-only connection)."""
    base = settings.ROBODASH_PUBLIC_URL.rstrip("/")
    return f"{base}/hooks/{connection.kind}/{connection.store_id}/"


def orders_api_url() -> str:
    return f"{settings.ROBODASH_PUBLIC_URL.rstrip('/')}/api/v1/orders"
