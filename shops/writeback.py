"""The requests that put a decision back into the shop: a Shopify tag or note, a WooCommerce note
or status, a signed webhook to the merchant's own server.

Each function makes its request(s) with explicit timeouts and no automatic retry, and either
returns a short description of what it did or raises WriteBackFailed saying whether trying again
later can help (`retry`, with the `Retry-After` the shop asked for when it did) or not (bad
credentials, an order the shop does not know: a person has to act). Delivery, backoff and
exactly-once live with the outbox; this module only talks to the shops.

Exactly once where the shop is not idempotent: Shopify's `tagsAdd` adds a tag that is there
already as a no-op, and a webhook carries its delivery id for the receiver to deduplicate, but a
WooCommerce note posted twice is two notes. So every note robodash writes ends with a marker
naming its outbox row, and before posting one the order's notes are read: a note already there
(the answer to an earlier attempt was lost) is not posted again.

Credentials travel in headers (never in a URL) and no message here quotes one.

WooCommerce is spoken with plain `requests` rather than the `woocommerce` package: that package
is a thin wrapper whose value is OAuth 1.0a for plain-HTTP sites and keys in the query string,
neither of which robodash wants (a key in a URL ends up in logs), and it sets no timeouts.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import requests

from shops.signatures import DELIVERY_HEADER, SIGNATURE_HEADER, sign_webhook

TIMEOUT = (5.0, 15.0)  # (connect, read) seconds
TAGS_ADD = """
mutation robodashTagsAdd($id: ID!, $tags: [String!]!) {
  tagsAdd(id: $id, tags: $tags) { node { id } userErrors { field message } }
}
"""
ORDER_NOTE = """
mutation robodashOrderNote($input: OrderInput!) {
  orderUpdate(input: $input) { order { id } userErrors { field message } }
}
"""


class WriteBackFailed(Exception):
    def __init__(self, reason: str, *, retry: bool, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry
        self.retry_after = retry_after


@dataclass(frozen=True)
class ShopifyTarget:
    admin_api_url: str  # https://<shop>.myshopify.com/admin/api/<version>/graphql.json
    access_token: str


@dataclass(frozen=True)
class WooCommerceTarget:
    site_url: str  # https://shop.example.pk
    consumer_key: str
    consumer_secret: str

    def orders_url(self, order_id: str, *rest: str) -> str:
        return "/".join([self.site_url.rstrip("/"), "wp-json/wc/v3/orders", order_id, *rest])


def shopify_order_gid(order_id: int | str) -> str:
    return f"gid://shopify/Order/{order_id}"


# --- Shopify ------------------------------------------------------------------------------------


def shopify_add_tags(target: ShopifyTarget, order_id: int | str, tags: list[str]) -> str:
    data = _shopify(target, TAGS_ADD, {"id": shopify_order_gid(order_id), "tags": tags}, "tagsAdd")
    return f"tagged {', '.join(tags)} ({data['node']['id']})"


def shopify_set_note(target: ShopifyTarget, order_id: int | str, note: str) -> str:
    variables = {"input": {"id": shopify_order_gid(order_id), "note": note}}
    _shopify(target, ORDER_NOTE, variables, "orderUpdate")
    return "order note written"


def _shopify(
    target: ShopifyTarget, query: str, variables: dict[str, Any], field: str
) -> dict[str, Any]:
    response = _send(
        "Shopify",
        "POST",
        target.admin_api_url,
        headers={"X-Shopify-Access-Token": target.access_token},
        json={"query": query, "variables": variables},
    )
    _raise_for_status("Shopify", response)
    body = _json("Shopify", response)
    errors = body.get("errors") if isinstance(body, dict) else None
    if errors:
        codes = {e.get("extensions", {}).get("code") for e in errors if isinstance(e, dict)}
        if "THROTTLED" in codes:  # GraphQL's rate limit answers 200 with this
            raise WriteBackFailed("Shopify is throttling requests", retry=True)
        raise WriteBackFailed(f"Shopify refused the request: {_messages(errors)}", retry=False)
    result = (body.get("data") or {}).get(field) if isinstance(body, dict) else None
    if not isinstance(result, dict):
        raise WriteBackFailed(f"Shopify's answer has no {field}", retry=True)
    if result.get("userErrors"):
        # HTTP 200, and still nothing was written: the order or the input was refused.
        reason = f"Shopify refused it: {_messages(result['userErrors'])}"
        raise WriteBackFailed(reason, retry=False)
    return result


# --- WooCommerce --------------------------------------------------------------------------------


def woocommerce_add_note(target: WooCommerceTarget, order_id: str, note: str, marker: str) -> str:
    """Post `note` (which ends with `marker`) unless a note with `marker` is there already."""
    auth = (target.consumer_key, target.consumer_secret)
    listed = _send("WooCommerce", "GET", target.orders_url(order_id, "notes"), auth=auth)
    _raise_for_status("WooCommerce", listed)
    notes = _json("WooCommerce", listed)
    if isinstance(notes, list) and any(marker in str(n.get("note", "")) for n in notes):
        return "order note already there (an earlier answer was lost)"
    posted = _send(
        "WooCommerce",
        "POST",
        target.orders_url(order_id, "notes"),
        auth=auth,
        json={"note": note, "customer_note": False},
    )
    _raise_for_status("WooCommerce", posted)
    return "order note added"


def woocommerce_set_status(target: WooCommerceTarget, order_id: str, status: str) -> str:
    auth = (target.consumer_key, target.consumer_secret)
    response = _send(
        "WooCommerce", "PUT", target.orders_url(order_id), auth=auth, json={"status": status}
    )
    _raise_for_status("WooCommerce", response)
    return f"order status set to {status}"


# --- A merchant's own server --------------------------------------------------------------------


def deliver_webhook(url: str, secret: str, payload: dict[str, Any], delivery_id: str) -> str:
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    response = _send(
        "the webhook URL",
        "POST",
        url,
        data=body,
        headers={
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign_webhook(body, secret, time.time()),
            DELIVERY_HEADER: delivery_id,
        },
    )
    if response.status_code == 410:  # the receiver says it is gone for good
        raise WriteBackFailed("the webhook URL answered 410 Gone", retry=False)
    if not 200 <= response.status_code < 300:
        # Any other refusal may be a receiver being fixed or deployed: try again later.
        raise WriteBackFailed(
            f"the webhook URL answered HTTP {response.status_code}",
            retry=True,
            retry_after=_retry_after(response),
        )
    return f"delivered (HTTP {response.status_code})"


# --- Shared -------------------------------------------------------------------------------------


def _send(who: str, method: str, url: str, **kwargs: Any) -> requests.Response:
    try:
        return requests.request(method, url, timeout=TIMEOUT, allow_redirects=False, **kwargs)
    except requests.Timeout:
        raise WriteBackFailed(f"{who} did not answer in time", retry=True) from None
    except requests.ConnectionError:
        raise WriteBackFailed(f"could not connect to {who}", retry=True) from None
    except requests.RequestException as error:
        raise WriteBackFailed(f"{who}: {type(error).__name__}", retry=True) from None


def _raise_for_status(who: str, response: requests.Response) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    if status == 429:
        reason = f"{who} asked to slow down (HTTP 429)"
        raise WriteBackFailed(reason, retry=True, retry_after=_retry_after(response))
    if status >= 500:
        raise WriteBackFailed(f"{who} answered HTTP {status}", retry=True)
    if status in (401, 403):
        reason = f"{who} refused the credentials (HTTP {status}): check them in Integrations"
        raise WriteBackFailed(reason, retry=False)
    if status == 404:
        raise WriteBackFailed(f"{who} does not know this order (HTTP 404)", retry=False)
    raise WriteBackFailed(f"{who} refused the request (HTTP {status})", retry=False)


def _retry_after(response: requests.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return None


def _json(who: str, response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise WriteBackFailed(f"{who} answered something that is not JSON", retry=True) from None


def _messages(errors: Any) -> str:
    if not isinstance(errors, list):
        return str(errors)[:200]
    return "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors)[
        :300
    ]
