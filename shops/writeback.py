"""The requests that put a decision back into the shop: Shopify tags and robodash's line in the
order note, a WooCommerce note or status, a signed webhook to the merchant's own server.

Each function makes its request(s) through shops/outgoing.py (public https only, the checked
address, no redirect followed) with explicit timeouts and no automatic retry, and either returns
what it did as a step (a code and its values, `{"code": "tagged", "tags": [...]}`: the order
page words it, WriteBack.summary) or raises WriteBackFailed with a code and the HTTP status (a
shop's reply text is never kept: it is the shop's words, sometimes an attacker's, and the order
page would show it) saying whether trying again later can help (`retry`, with the `Retry-After`
the shop asked for when it did) or not (bad credentials, an order the shop does not know, a
redirect, an address robodash will not send to: a person has to act). Delivery, backoff and
exactly-once live with the outbox; this module only talks to the shops.

Exactly once where the shop is not idempotent: Shopify's `tagsAdd` adds a tag that is there
already as a no-op (and `tagsRemove` removes one that is not there as one), and a webhook carries
its delivery id for the receiver to deduplicate, but a WooCommerce note posted twice is two
notes. So every note robodash writes ends with a marker naming its outbox row and version, and
before posting one the order's notes are read: a note already there (the answer to an earlier
attempt was lost) is not posted again.

Shopify's `orderUpdate` overwrites the whole note with the one it is given (and the whole list
of custom attributes likewise), and the note is where the customer's delivery instructions are.
So robodash reads the note, replaces only its own line (the one starting `Robocall: `) or adds
it, and writes it back only when that changed anything. A note edited in the shop between the
read and the write would lose that edit: a window of a few hundred milliseconds, once per
decision.

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
from urllib.parse import quote, urlsplit, urlunsplit

import requests

from shops import outgoing
from shops.signatures import DELIVERY_HEADER, SIGNATURE_HEADER, sign_webhook

TIMEOUT = (5.0, 15.0)  # (connect, read) seconds
TAGS_ADD = """
mutation robodashTagsAdd($id: ID!, $tags: [String!]!) {
  tagsAdd(id: $id, tags: $tags) { node { id } userErrors { field message } }
}
"""
TAGS_REMOVE = """
mutation robodashTagsRemove($id: ID!, $tags: [String!]!) {
  tagsRemove(id: $id, tags: $tags) { node { id } userErrors { field message } }
}
"""
ORDER_NOTE = """
query robodashOrderNote($id: ID!) {
  order(id: $id) { id note }
}
"""
NOTE_UPDATE = """
mutation robodashNoteUpdate($input: OrderInput!) {
  orderUpdate(input: $input) { order { id } userErrors { field message } }
}
"""
# robodash's own line in a Shopify order's note: the only line it replaces.
NOTE_LINE_START = "Robocall: "

Step = dict[str, Any]  # what a request did: {"code": …, values…} (WriteBack.RESULT_WORDS)


class WriteBackFailed(Exception):
    """Why a write-back failed, as a code and a detail (the HTTP status, or why an address was
    refused): `stored` is what the outbox keeps, WriteBack.problem() puts it in words."""

    def __init__(
        self,
        code: str,
        detail: int | str = "",
        *,
        retry: bool,
        retry_after: float | None = None,
    ) -> None:
        self.code = code
        self.detail = str(detail)
        self.retry = retry
        self.retry_after = retry_after
        super().__init__(self.stored)

    @property
    def stored(self) -> str:
        return f"{self.code}:{self.detail}" if self.detail else self.code


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
        """The REST path under the site's own path, whatever the stored address carries after
        it (a site ending in `?x=` would otherwise turn the path into a query and let the
        request go to any path), with the order id one path segment (no `/` or `..` in it)."""
        site = urlsplit(self.site_url)
        path = "/".join(
            [site.path.rstrip("/"), "wp-json/wc/v3/orders", quote(order_id, safe=""), *rest]
        )
        return urlunsplit((site.scheme, site.netloc, path, "", ""))


def shopify_order_gid(order_id: int | str) -> str:
    return f"gid://shopify/Order/{order_id}"


# --- Shopify ------------------------------------------------------------------------------------


def shopify_add_tags(target: ShopifyTarget, order_id: int | str, tags: list[str]) -> Step:
    _shopify(target, TAGS_ADD, {"id": shopify_order_gid(order_id), "tags": tags}, "tagsAdd")
    return {"code": "tagged", "tags": tags}


def shopify_remove_tags(target: ShopifyTarget, order_id: int | str, tags: list[str]) -> Step:
    """Remove `tags` from the order; one it does not carry is no error."""
    variables = {"id": shopify_order_gid(order_id), "tags": tags}
    _shopify(target, TAGS_REMOVE, variables, "tagsRemove")
    return {"code": "untagged", "tags": tags}


def shopify_write_note_line(target: ShopifyTarget, order_id: int | str, line: str) -> Step:
    """Put `line` (starting NOTE_LINE_START) in the order's note in place of robodash's earlier
    line, keeping every other line of it; no write when the note says so already."""
    gid = shopify_order_gid(order_id)
    order = _shopify(target, ORDER_NOTE, {"id": gid}, "order")
    note = order.get("note")
    current = note if isinstance(note, str) else ""
    wanted = with_note_line(current, line)
    if wanted == current:
        return {"code": "note_unchanged"}
    _shopify(target, NOTE_UPDATE, {"input": {"id": gid, "note": wanted}}, "orderUpdate")
    return {"code": "note_written"}


def with_note_line(note: str, line: str) -> str:
    """`note` with robodash's line(s) replaced by `line`, at the end: the other lines (the
    customer's, the merchant's) kept as they were."""
    kept = [each for each in note.splitlines() if not each.startswith(NOTE_LINE_START)]
    while kept and not kept[-1].strip():
        kept.pop()
    return "\n".join([*kept, line])


def _shopify(
    target: ShopifyTarget, query: str, variables: dict[str, Any], field: str
) -> dict[str, Any]:
    response = _send(
        "POST",
        target.admin_api_url,
        headers={"X-Shopify-Access-Token": target.access_token},
        json={"query": query, "variables": variables},
    )
    _raise_for_status(response)
    body = _json(response)
    errors = body.get("errors") if isinstance(body, dict) else None
    if errors:
        codes = {e.get("extensions", {}).get("code") for e in errors if isinstance(e, dict)}
        if "THROTTLED" in codes:  # GraphQL's rate limit answers 200 with this
            raise WriteBackFailed("throttled", response.status_code, retry=True)
        raise WriteBackFailed("refused", response.status_code, retry=False)
    data = body.get("data") if isinstance(body, dict) else None
    result = data.get(field) if isinstance(data, dict) else None
    if field == "order" and isinstance(data, dict) and field in data and result is None:
        # A query answers an id it does not know with null, on HTTP 200.
        raise WriteBackFailed("unknown_order", response.status_code, retry=False)
    if not isinstance(result, dict):
        raise WriteBackFailed("unreadable", response.status_code, retry=True)
    if result.get("userErrors"):
        # HTTP 200, and still nothing was written: the order or the input was refused.
        raise WriteBackFailed("refused", response.status_code, retry=False)
    return result


# --- WooCommerce --------------------------------------------------------------------------------


def woocommerce_add_note(target: WooCommerceTarget, order_id: str, note: str, marker: str) -> Step:
    """Post `note` (which ends with `marker`) unless a note with `marker` is there already."""
    auth = (target.consumer_key, target.consumer_secret)
    listed = _send("GET", target.orders_url(order_id, "notes"), auth=auth)
    _raise_for_status(listed)
    notes = _json(listed)
    if isinstance(notes, list) and any(marker in str(n.get("note", "")) for n in notes):
        return {"code": "note_already_there"}
    posted = _send(
        "POST",
        target.orders_url(order_id, "notes"),
        auth=auth,
        json={"note": note, "customer_note": False},
    )
    _raise_for_status(posted)
    return {"code": "note_added"}


def woocommerce_set_status(target: WooCommerceTarget, order_id: str, status: str) -> Step:
    auth = (target.consumer_key, target.consumer_secret)
    response = _send("PUT", target.orders_url(order_id), auth=auth, json={"status": status})
    _raise_for_status(response)
    return {"code": "status_set", "status": status}


# --- A merchant's own server --------------------------------------------------------------------


def deliver_webhook(url: str, secret: str, payload: dict[str, Any], delivery_id: str) -> Step:
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    response = _send(
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
        raise WriteBackFailed("gone", 410, retry=False)
    if 300 <= response.status_code < 400:
        raise WriteBackFailed("redirect", response.status_code, retry=False)
    if not 200 <= response.status_code < 300:
        # Any other refusal may be a receiver being fixed or deployed: try again later.
        raise WriteBackFailed(
            "http", response.status_code, retry=True, retry_after=_retry_after(response)
        )
    return {"code": "delivered", "status": response.status_code}


# --- Shared -------------------------------------------------------------------------------------


def _send(method: str, url: str, **kwargs: Any) -> requests.Response:
    try:
        return outgoing.send(method, url, timeout=TIMEOUT, **kwargs)
    except outgoing.AddressRefused as refused:
        # A name that does not resolve now may again (DNS being changed); the rest is the
        # stored address itself, which a person has to correct.
        retry = refused.code == "unresolvable"
        raise WriteBackFailed("address", refused.code, retry=retry) from None
    except requests.Timeout:
        raise WriteBackFailed("timeout", retry=True) from None
    except requests.ConnectionError:
        raise WriteBackFailed("connect", retry=True) from None
    except requests.RequestException:
        raise WriteBackFailed("request", retry=True) from None


def _raise_for_status(response: requests.Response) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    if 300 <= status < 400:  # never followed: it could lead anywhere, a private address too
        raise WriteBackFailed("redirect", status, retry=False)
    if status == 429:
        raise WriteBackFailed("throttled", status, retry=True, retry_after=_retry_after(response))
    if status >= 500:
        raise WriteBackFailed("http", status, retry=True)
    if status in (401, 403):
        raise WriteBackFailed("credentials", status, retry=False)
    if status == 404:
        raise WriteBackFailed("unknown_order", status, retry=False)
    raise WriteBackFailed("refused", status, retry=False)


def _retry_after(response: requests.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return None


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise WriteBackFailed("not_json", response.status_code, retry=True) from None
