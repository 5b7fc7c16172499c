"""Serve the stand-ins: in a thread of the calling process (tests), or as `python -m standins`."""

from __future__ import annotations

import threading
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import requests

from standins.app import StandInApp, StandInState


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # access lines are noise here, and a path may name a merchant's order


class StandIns:
    """The stand-ins on 127.0.0.1:`port` (0: a free one), served from a background thread."""

    def __init__(
        self, port: int = 0, host: str = "127.0.0.1", any_order_tokens: tuple[str, ...] = ()
    ) -> None:
        self.state = StandInState(any_order_tokens)
        self.server = make_server(
            host, port, StandInApp(self.state), _ThreadingWSGIServer, handler_class=_QuietHandler
        )
        self.root_url = f"http://{host}:{self.server.server_port}"
        self.shopify_admin_url = f"{self.root_url}/admin/api/2025-07/graphql.json"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> StandIns:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> StandIns:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def receiver_url(self, name: str) -> str:
        return f"{self.root_url}/receiver/{name}"

    def control(self, method: str, name: str, payload: dict[str, Any] | None = None) -> Any:
        """Drive the control API over HTTP, as another process would."""
        response = requests.request(
            method, f"{self.root_url}/_standin/{name}", json=payload or {}, timeout=10
        )
        response.raise_for_status()
        return response.json()

    def records(self) -> dict[str, Any]:
        return self.control("GET", "records")

    def fail_next(self, target: str, *failures: dict[str, Any]) -> None:
        self.control("POST", "failures", {"target": target, "failures": list(failures)})

    # --- The shops' own webhooks to robodash ---

    def register_webhook(self, target: str, url: str, secret: str) -> None:
        """Where `target` (shopify, woocommerce) sends its webhooks, signed with `secret`."""
        self.control("POST", "webhooks", {"target": target, "url": url, "secret": secret})

    def send_fulfillment(self, order_id: int | str, **fields: Any) -> dict[str, Any]:
        """A Shopify fulfillment webhook (topic, shipment_status, status, tracking_number, at,
        fulfillment_id, delivery): robodash's answer ({status, answer, delivery…})."""
        return self.control("POST", "shopify/fulfillment", {"order_id": order_id, **fields})

    def send_order_updated(self, order_id: int | str, status: str, **fields: Any) -> dict[str, Any]:
        """WooCommerce's order.updated for the order now at `status` (at, delivery)."""
        payload = {"order_id": order_id, "status": status, **fields}
        return self.control("POST", "woocommerce/order-updated", payload)

    def send_raw(self, target: str, topic: str, body: str, **fields: Any) -> dict[str, Any]:
        """Any body, signed, under any topic."""
        payload = {"target": target, "topic": topic, "body": body, **fields}
        return self.control("POST", "send", payload)
