"""Signatures on webhooks, both ways, compared in constant time.

In: Shopify (`X-Shopify-Hmac-Sha256`) and WooCommerce (`X-WC-Webhook-Signature`) both sign the raw
request body with HMAC-SHA256 under the webhook's secret and send the digest in base64. The body
is checked before it is parsed: an unsigned one is never read as JSON.

Out: robodash signs the webhooks it sends to a merchant's server the way Stripe does, so the same
few lines verify it: `Robodash-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
The receiver recomputes v1 over the timestamp and the raw body, compares in constant time, and
refuses a timestamp older than a few minutes, so a captured delivery cannot be replayed later.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

SIGNATURE_HEADER = "Robodash-Signature"
DELIVERY_HEADER = "Robodash-Delivery"
REPLAY_TOLERANCE = 300  # seconds a receiver should accept a signature's timestamp for


def base64_hmac(body: bytes, secret: str) -> str:
    """The base64 HMAC-SHA256 of `body` under `secret`, as Shopify and WooCommerce sign."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def base64_hmac_is_valid(body: bytes, signature: str | None, secret: str) -> bool:
    """Whether `signature` is the base64 HMAC-SHA256 of `body` under `secret` (Shopify and
    WooCommerce webhooks)."""
    if not signature or not secret:
        return False
    return hmac.compare_digest(base64_hmac(body, secret), signature.strip())


def sign_webhook(body: bytes, secret: str, now: float) -> str:
    """The Robodash-Signature header for `body`, sent at `now` (unix seconds)."""
    timestamp = int(now)
    return f"t={timestamp},v1={_v1(timestamp, body, secret)}"


def webhook_signature_is_valid(
    body: bytes, header: str, secret: str, now: float, tolerance: int = REPLAY_TOLERANCE
) -> bool:
    """What a merchant's server does with a Robodash-Signature header (also in docs/webhooks.md)."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(_v1(timestamp, body, secret), parts.get("v1", ""))


def _v1(timestamp: int, body: bytes, secret: str) -> str:
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
