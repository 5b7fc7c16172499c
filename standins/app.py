"""The stand-ins' state and their WSGI application (see the package docstring)."""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

TARGETS = ("shopify", "woocommerce", "receiver")
MAX_BODY = 1_000_000
SHOPIFY_PATH = re.compile(r"^/admin/api/[0-9a-z-]+/graphql\.json$")
WOO_ORDER_PATH = re.compile(r"^/wp-json/wc/v3/orders/(?P<order>[^/]+)(?P<notes>/notes)?/?$")
RECEIVER_PATH = re.compile(r"^/receiver/(?P<name>[A-Za-z0-9_-]+)/?$")
ORDER_QUERY = re.compile(r"\border\s*\(")  # the order(id: …) query, after the mutations


class BadControl(Exception):
    """A control request the stand-ins cannot follow."""


@dataclass
class Failure:
    """One scripted answer for the next request: an HTTP status (500, 429…) instead of the real
    answer, the real answer held for hold_seconds (past a client's timeout), or status 0: the
    real answer (to let a request through and fail the one after it). A redirect (3xx) sends
    `location` as its Location; `message` is the reply's error text."""

    status: int = 500
    retry_after: int | None = None
    hold_seconds: float = 0.0
    location: str | None = None
    message: str = "scripted failure"


@dataclass
class Reply:
    status: int
    payload: Any
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class ShopifyOrder:
    tags: list[str] = field(default_factory=list)
    note: str | None = None  # the customer's, as the checkout took it, until an update
    custom_attributes: list[dict[str, str]] = field(default_factory=list)
    tag_writes: int = 0  # tagsAdd and tagsRemove mutations that reached this order
    note_writes: int = 0  # orderUpdate mutations that gave it a note


@dataclass
class WooOrder:
    status: str = "processing"
    notes: list[dict[str, Any]] = field(default_factory=list)


class StandInState:
    def __init__(self, any_order_tokens: tuple[str, ...] = ()) -> None:
        self.lock = threading.Lock()
        self.preset_any_order_tokens = any_order_tokens
        self.reset()

    def reset(self) -> None:
        self.shopify_tokens: set[str] = set(self.preset_any_order_tokens)
        # Tokens of shops that know every order id (the demo's, a browser test's): the order is
        # made on its first write instead of refused as unknown.
        self.shopify_any_order: set[str] = set(self.preset_any_order_tokens)
        self.shopify_orders: dict[str, ShopifyOrder] = {}
        self.woo_credentials: set[tuple[str, str]] = set()
        self.woo_orders: dict[str, WooOrder] = {}
        self.receiver_secrets: dict[str, str] = {}
        self.deliveries: dict[str, list[dict[str, Any]]] = {}
        self.failures: dict[str, deque[Failure]] = {target: deque() for target in TARGETS}
        self.requests: Counter[str] = Counter()

    def next_failure(self, target: str) -> Failure | None:
        with self.lock:
            self.requests[target] += 1
            queue = self.failures[target]
            return queue.popleft() if queue else None

    # --- control ---

    def control(self, method: str, name: str, body: dict[str, Any]) -> Any:
        with self.lock:
            if (method, name) == ("GET", "health"):
                return {"ok": True}
            if (method, name) == ("POST", "reset"):
                self.reset()
                return {"reset": True}
            if (method, name) == ("POST", "shopify"):
                self.shopify_tokens.add(_required(body, "token"))
                if body.get("any_order"):
                    self.shopify_any_order.add(body["token"])
                for gid in body.get("orders", []):
                    self.shopify_orders.setdefault(str(gid), ShopifyOrder())
                # {gid: note}: orders whose customer left a note at checkout.
                notes = body.get("notes") or {}
                if not isinstance(notes, dict):
                    raise BadControl("notes maps an order's gid to its note")
                for gid, note in notes.items():
                    self.shopify_orders.setdefault(str(gid), ShopifyOrder()).note = str(note)
                return {"orders": len(self.shopify_orders)}
            if (method, name) == ("POST", "woocommerce"):
                self.woo_credentials.add((_required(body, "key"), _required(body, "secret")))
                for order_id in body.get("orders", []):
                    self.woo_orders.setdefault(str(order_id), WooOrder())
                return {"orders": len(self.woo_orders)}
            if (method, name) == ("POST", "receivers"):
                receiver = _required(body, "name")
                self.receiver_secrets[receiver] = _required(body, "secret")
                self.deliveries.setdefault(receiver, [])
                return {"receiver": receiver}
            if (method, name) == ("POST", "failures"):
                target = body.get("target")
                if target not in TARGETS:
                    raise BadControl(f"target must be one of {', '.join(TARGETS)}")
                try:
                    self.failures[target].extend(Failure(**f) for f in body.get("failures", []))
                except TypeError:
                    fields = "status, retry_after, hold_seconds, location, message"
                    raise BadControl(f"a failure has the fields {fields} only") from None
                return {"queued": len(self.failures[target])}
            if (method, name) == ("GET", "records"):
                return self.records()
        raise BadControl(f"no control endpoint {method} {name}")

    def records(self) -> dict[str, Any]:
        return {
            "shopify": {
                gid: {
                    "tags": order.tags,
                    "note": order.note,
                    "custom_attributes": order.custom_attributes,
                    "tag_writes": order.tag_writes,
                    "note_writes": order.note_writes,
                }
                for gid, order in self.shopify_orders.items()
            },
            "woocommerce": {
                order_id: {"status": order.status, "notes": [n["note"] for n in order.notes]}
                for order_id, order in self.woo_orders.items()
            },
            "receivers": dict(self.deliveries),
            "requests": dict(self.requests),
        }


def _required(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise BadControl(f"{name} is required")
    return value


# --- Shopify Admin GraphQL ----------------------------------------------------------------------


def shopify(state: StandInState, headers: dict[str, str], body: bytes) -> Reply:
    if headers.get("x-shopify-access-token") not in state.shopify_tokens:
        message = "[API] Invalid API key or access token (unrecognized login or wrong password)"
        return Reply(401, {"errors": message})
    try:
        request = json.loads(body)
        query, variables = request["query"], request.get("variables") or {}
    except (ValueError, KeyError, TypeError):
        return Reply(400, {"errors": [{"message": "Invalid JSON body or missing query"}]})
    if headers["x-shopify-access-token"] in state.shopify_any_order:
        gid = str(variables.get("id") or (variables.get("input") or {}).get("id") or "")
        with state.lock:
            state.shopify_orders.setdefault(gid, ShopifyOrder())
    if "tagsAdd" in query:
        return Reply(200, {"data": {"tagsAdd": _tags_change(state, variables, add=True)}})
    if "tagsRemove" in query:
        return Reply(200, {"data": {"tagsRemove": _tags_change(state, variables, add=False)}})
    if "orderUpdate" in query:
        return Reply(200, {"data": {"orderUpdate": _order_update(state, variables)}})
    if ORDER_QUERY.search(query):
        return Reply(200, {"data": {"order": _order(state, variables)}})
    message = "The stand-in knows tagsAdd, tagsRemove, orderUpdate and order(id:) only"
    return Reply(200, {"errors": [{"message": message}]})


def _tags_change(state: StandInState, variables: dict[str, Any], *, add: bool) -> dict[str, Any]:
    """tagsAdd (a tag there already is a no-op) or tagsRemove (a tag not there is one)."""
    gid, tags = str(variables.get("id", "")), variables.get("tags")
    with state.lock:
        order = state.shopify_orders.get(gid)
        if order is None:
            return {"node": None, "userErrors": [{"field": ["id"], "message": "Order not found"}]}
        if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
            return {"node": None, "userErrors": [{"field": ["tags"], "message": "Invalid tags"}]}
        order.tag_writes += 1
        if add:
            order.tags += [tag for tag in tags if tag not in order.tags]
        else:
            order.tags = [tag for tag in order.tags if tag not in tags]
        return {"node": {"id": gid}, "userErrors": []}


def _order_update(state: StandInState, variables: dict[str, Any]) -> dict[str, Any]:
    """Shopify's OrderInput: a field given overwrites the order's (the whole note, the whole
    list of custom attributes); a field not given is left as it was."""
    data = variables.get("input") or {}
    gid = str(data.get("id", ""))
    with state.lock:
        order = state.shopify_orders.get(gid)
        if order is None:
            return {"order": None, "userErrors": [{"field": ["id"], "message": "Order not found"}]}
        if "note" in data:
            order.note = None if data["note"] is None else str(data["note"])
            order.note_writes += 1
        if "customAttributes" in data:
            attributes = data["customAttributes"] or []
            order.custom_attributes = [
                {"key": str(a.get("key", "")), "value": str(a.get("value", ""))}
                for a in attributes
                if isinstance(a, dict)
            ]
        return {"order": {"id": gid}, "userErrors": []}


def _order(state: StandInState, variables: dict[str, Any]) -> dict[str, Any] | None:
    """The order(id:) query: null for an id the shop does not know, as Shopify answers."""
    gid = str(variables.get("id", ""))
    with state.lock:
        order = state.shopify_orders.get(gid)
        if order is None:
            return None
        return {"id": gid, "note": order.note, "customAttributes": order.custom_attributes}


# --- WooCommerce REST v3 ------------------------------------------------------------------------


def woocommerce(
    state: StandInState,
    method: str,
    order_id: str,
    notes: bool,
    headers: dict[str, str],
    body: bytes,
) -> Reply:
    if _basic_auth(headers) not in state.woo_credentials:
        return Reply(
            401, _woo_error("woocommerce_rest_cannot_view", "Sorry, you cannot do that.", 401)
        )
    with state.lock:
        order = state.woo_orders.get(order_id)
        if order is None:
            return Reply(
                404, _woo_error("woocommerce_rest_shop_order_invalid_id", "Invalid ID.", 404)
            )
        if notes and method == "GET":
            return Reply(200, list(reversed(order.notes)))  # newest first, as WooCommerce does
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return Reply(400, _woo_error("rest_invalid_json", "Invalid JSON body passed.", 400))
        if notes and method == "POST":
            if not str(data.get("note", "")).strip():
                return Reply(400, _woo_error("rest_missing_callback_param", "Missing note", 400))
            note = {"id": len(order.notes) + 1, "note": str(data["note"]), "customer_note": False}
            order.notes.append(note)
            return Reply(201, note)
        if not notes and method in ("PUT", "POST"):
            order.status = str(data.get("status", order.status))
            return Reply(200, {"id": order_id, "status": order.status})
    return Reply(405, _woo_error("rest_no_route", "No route was found.", 405))


def _woo_error(code: str, message: str, status: int) -> dict[str, Any]:
    return {"code": code, "message": message, "data": {"status": status}}


def _basic_auth(headers: dict[str, str]) -> tuple[str, str] | None:
    scheme, _, encoded = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        key, _, secret = base64.b64decode(encoded).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return key, secret


# --- A merchant's webhook receiver --------------------------------------------------------------


def receiver(state: StandInState, name: str, headers: dict[str, str], body: bytes) -> Reply:
    """Records each delivery with whether its signature checks out against the receiver's secret
    (t=<unix>,v1=<hex HMAC-SHA256 of "t.body">), as a merchant's server would verify it."""
    from shops.signatures import webhook_signature_is_valid

    with state.lock:
        secret = state.receiver_secrets.get(name)
        if secret is None:
            return Reply(404, {"error": "no such receiver"})
        signed = webhook_signature_is_valid(
            body, headers.get("robodash-signature", ""), secret, now=time.time()
        )
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        state.deliveries[name].append(
            {
                "delivery": headers.get("robodash-delivery", ""),
                "signed": signed,
                "payload": payload,
            }
        )
    if not signed:
        return Reply(400, {"error": "bad signature"})
    return Reply(200, {"received": True})


# --- WSGI -----------------------------------------------------------------------------------------


class StandInApp:
    def __init__(self, state: StandInState | None = None) -> None:
        self.state = state or StandInState()

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        reply = self.answer(environ)
        body = json.dumps(reply.payload).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        start_response(
            f"{reply.status} {_REASONS.get(reply.status, 'Status')}", headers + reply.headers
        )
        return [body]

    def answer(self, environ: dict[str, Any]) -> Reply:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        if "CONTENT_TYPE" in environ:
            headers["content-type"] = environ["CONTENT_TYPE"]
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        body = environ["wsgi.input"].read(min(length, MAX_BODY)) if length > 0 else b""

        if path.startswith("/_standin/"):
            try:
                data = json.loads(body or b"{}")
                return Reply(200, self.state.control(method, path[10:].strip("/"), data))
            except (BadControl, ValueError, AttributeError) as error:
                return Reply(400, {"error": str(error)})
        target, handle = self._route(method, path, headers, body)
        if handle is None:
            return Reply(404, {"errors": "Not Found"})
        failure = self.state.next_failure(target)
        if failure is not None and failure.status:
            if failure.hold_seconds:
                time.sleep(failure.hold_seconds)  # the client's read timeout is the point
            else:
                extra = [("Retry-After", str(failure.retry_after))] if failure.retry_after else []
                if failure.location:
                    extra.append(("Location", failure.location))
                return Reply(failure.status, {"errors": failure.message}, extra)
        return handle()

    def _route(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[str, Callable[[], Reply] | None]:
        state = self.state
        if SHOPIFY_PATH.match(path) and method == "POST":
            return "shopify", lambda: shopify(state, headers, body)
        if match := WOO_ORDER_PATH.match(path):
            order, notes = match["order"], bool(match["notes"])
            return "woocommerce", lambda: woocommerce(state, method, order, notes, headers, body)
        if (match := RECEIVER_PATH.match(path)) and method == "POST":
            return "receiver", lambda: receiver(state, match["name"], headers, body)
        return "", None


_REASONS = {
    200: "OK",
    201: "Created",
    301: "Moved Permanently",
    302: "Found",
    307: "Temporary Redirect",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}
