"""The stand-ins' state and their WSGI application (see the package docstring)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import hashlib
import hmac
import itertools
import json
import re
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import requests

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
    # Run before the reply goes (outside the lock): a webhook the change makes the shop send, as
    # WooCommerce sends its own when its asynchronous delivery is off.
    then: Callable[[], Any] | None = None


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
        # The shops' own webhooks to robodash: per shop, where they go and the secret they are
        # signed with; the fulfillments the Shopify stand-in made; every webhook sent.
        self.webhooks: dict[str, dict[str, str]] = {}
        self.fulfillments: dict[int, dict[str, Any]] = {}
        self.sent: list[dict[str, Any]] = []
        self.ids = itertools.count(1001)

    def new_id(self) -> int:
        """A fulfillment's id, or a WooCommerce webhook delivery's (call holding the lock)."""
        return next(self.ids)

    def next_failure(self, target: str) -> Failure | None:
        with self.lock:
            self.requests[target] += 1
            queue = self.failures[target]
            return queue.popleft() if queue else None

    # --- control ---

    def control(self, method: str, name: str, body: dict[str, Any]) -> Any:
        # The shops' webhooks are sent without the lock: robodash's answer may take a while,
        # and the stand-ins keep answering its requests meanwhile.
        if (method, name) == ("POST", "send"):
            target, topic = body.get("target"), body.get("topic")
            if target not in SHOPS or not isinstance(topic, str):
                raise BadControl("send takes a target (shopify or woocommerce) and a topic")
            raw = body.get("body")
            sent = (
                raw.encode() if isinstance(raw, str) else json.dumps(body.get("payload")).encode()
            )
            return send_webhook(self, target, topic, sent, body.get("delivery"))
        if (method, name) == ("POST", "shopify/fulfillment"):
            topic, payload = self.fulfillment(body)
            return send_webhook(
                self, "shopify", topic, json.dumps(payload).encode(), body.get("delivery")
            )
        if (method, name) == ("POST", "woocommerce/order-updated"):
            payload = self.woo_order_updated(body)
            return send_webhook(
                self,
                "woocommerce",
                "order.updated",
                json.dumps(payload).encode(),
                body.get("delivery"),
            )
        with self.lock:
            if (method, name) == ("POST", "webhooks"):
                target = body.get("target")
                if target not in SHOPS:
                    raise BadControl(f"target must be one of {', '.join(SHOPS)}")
                self.webhooks[target] = {
                    "url": _required(body, "url"),
                    "secret": _required(body, "secret"),
                }
                return {"webhooks": sorted(self.webhooks)}
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
            "sent": list(self.sent),
        }

    def fulfillment(self, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """A fulfillment made (fulfillments/create) or changed (fulfillments/update, the order's
        latest unless `fulfillment_id` names one), as Shopify's webhook carries it."""
        topic = body.get("topic", "fulfillments/create")
        if topic not in ("fulfillments/create", "fulfillments/update"):
            raise BadControl("topic is fulfillments/create or fulfillments/update")
        order_id = _shop_id(body)
        at = _time(body.get("at")).astimezone(PKT).isoformat(timespec="seconds")
        changed = {key: body[key] for key in FULFILLMENT_FIELDS if key in body}
        with self.lock:
            if topic == "fulfillments/create":
                number = self.new_id()
                self.fulfillments[number] = {
                    "id": number,
                    "order_id": order_id,
                    "status": "success",
                    "created_at": at,
                    "service": "manual",
                    "shipment_status": None,
                    "tracking_company": "TCS",
                    "tracking_number": None,
                    "admin_graphql_api_id": f"gid://shopify/Fulfillment/{number}",
                }
            else:
                mine = [n for n, f in self.fulfillments.items() if f["order_id"] == order_id]
                named = str(body.get("fulfillment_id") or "")
                number = int(named) if named.isdigit() else max(mine, default=0)
                if number not in self.fulfillments:
                    raise BadControl(
                        f"order {order_id} has no fulfillment {number or ''} to update"
                    )
            fulfillment = self.fulfillments[number]
            fulfillment.update(changed, updated_at=at)
            number_text = fulfillment["tracking_number"]
            fulfillment["tracking_numbers"] = [number_text] if number_text else []
            return topic, dict(fulfillment)

    def woo_order_updated(self, body: dict[str, Any]) -> dict[str, Any]:
        """The order, its status set to `status`, as WooCommerce's order.updated carries it."""
        order_id, status = str(_shop_id(body)), _required(body, "status")
        with self.lock:
            self.woo_orders.setdefault(order_id, WooOrder()).status = status
        return woo_order_payload(order_id, status, _time(body.get("at")))


SHOPS = ("shopify", "woocommerce")
PKT = dt.timezone(dt.timedelta(hours=5))  # the shop's own zone, in the times it sends
# What a control request may set on a fulfillment (Shopify's Fulfillment resource).
FULFILLMENT_FIELDS = ("status", "shipment_status", "tracking_number", "tracking_company")


def _shop_id(body: dict[str, Any]) -> int | str:
    """The shop's id of an order: a JSON number, as Shopify and WooCommerce send it."""
    value = body.get("order_id")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise BadControl("order_id is the shop's id of the order, e.g. 820982911946154508")


def _time(value: Any) -> dt.datetime:
    """`value` (an ISO time; none: now) as an aware time."""
    if value is None:
        return dt.datetime.now(dt.UTC)
    try:
        when = dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise BadControl(f"at {value!r} is not an ISO time") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def woo_order_payload(order_id: str, status: str, at: dt.datetime) -> dict[str, Any]:
    """An order as WooCommerce's REST API (and its order webhooks) give it: times in the site's
    zone and, in *_gmt, in GMT, both without an offset."""
    gmt = at.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="seconds")
    local = at.astimezone(PKT).replace(tzinfo=None).isoformat(timespec="seconds")
    return {
        "id": int(order_id) if order_id.isdigit() else order_id,
        "number": order_id,
        "status": status,
        "currency": "PKR",
        "date_modified": local,
        "date_modified_gmt": gmt,
        "total": "1500.00",
        "payment_method": "cod",
        "payment_method_title": "Cash on delivery",
    }


def sign(body: bytes, secret: str) -> str:
    """The base64 HMAC-SHA256 of the body, as Shopify and WooCommerce sign their webhooks."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def webhook_headers(target: str, topic: str, body: bytes, secret: str, delivery: str) -> dict:
    if target == "shopify":
        return {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": sign(body, secret),
            "X-Shopify-Webhook-Id": delivery,
            "X-Shopify-Shop-Domain": "standin.myshopify.com",
            "X-Shopify-API-Version": "2025-07",
        }
    resource, _, event = topic.partition(".")
    return {
        "Content-Type": "application/json",
        "X-WC-Webhook-Source": "https://standin.example/",
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": resource,
        "X-WC-Webhook-Event": event,
        "X-WC-Webhook-Signature": sign(body, secret),
        "X-WC-Webhook-ID": "1",
        "X-WC-Webhook-Delivery-ID": delivery,
    }


def send_webhook(
    state: StandInState, target: str, topic: str, body: bytes, delivery: Any = None
) -> dict[str, Any]:
    """POST a shop's webhook, signed with the secret registered for `target`, to robodash; a
    `delivery` id given again is a redelivery of the same webhook. What robodash answered is
    returned and kept (records' `sent`)."""
    with state.lock:
        hook = state.webhooks.get(target)
        if hook is None:
            raise BadControl(f"no webhook registered for {target}: POST /_standin/webhooks first")
        if not delivery:
            delivery = str(uuid.uuid4()) if target == "shopify" else str(state.new_id())
    headers = webhook_headers(target, topic, body, hook["secret"], str(delivery))
    sent: dict[str, Any] = {"target": target, "topic": topic, "delivery": str(delivery)}
    try:
        # Within the control API's own client timeout (StandIns.control), so its caller hears.
        response = requests.post(hook["url"], data=body, headers=headers, timeout=8)
    except requests.RequestException as error:
        sent.update(status=0, answer=type(error).__name__)
    else:
        try:
            answer = response.json()
        except ValueError:
            answer = response.text[:500]
        sent.update(status=response.status_code, answer=answer)
    with state.lock:
        state.sent.append(sent)
    return sent


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
            then = None
            if "woocommerce" in state.webhooks:
                # The shop tells its webhooks of the change, whoever made it.
                payload = woo_order_payload(order_id, order.status, dt.datetime.now(dt.UTC))
                body = json.dumps(payload).encode()
                then = functools.partial(send_webhook, state, "woocommerce", "order.updated", body)
            return Reply(200, {"id": order_id, "status": order.status}, then=then)
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
        if reply.then is not None:
            reply.then()
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
