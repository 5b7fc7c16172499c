"""HTTP plumbing: the provider's API under /api/ and /api/v1/, the test-control API under /_sim/.

HTTP/1.1 with a Content-Length on every answer, so clients keep their connections alive. The
provider's API key travels in the query string, so nothing here ever prints a query string, a
request line or an exception message: --verbose logs the method and the path, nothing more.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from simulator.api import API_ENDPOINTS, Reply, answer_api_request
from simulator.state import InvalidInput, SimulatorState

API_PREFIXES = ("/api/v1/", "/api/")
CONTROL_PREFIX = "/_sim/"
MAX_CONTROL_BODY = 1_000_000


class SimulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # benchmarks open many connections at once

    def __init__(
        self, address: tuple[str, int], state: SimulatorState, *, verbose: bool = False
    ) -> None:
        super().__init__(address, SimulatorRequestHandler)
        self.state = state
        self.verbose = verbose

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The default prints the exception message, which might quote a URL with its key in
        # it; print where it happened and the exception's type only.
        exc_type, _, tb = sys.exc_info()
        name = exc_type.__name__ if exc_type else "error"
        where = "".join(traceback.format_tb(tb)) if tb else ""
        sys.stderr.write(f"simulator: {name} while handling a request\n{where}")
        sys.stderr.flush()


def _json_reply(status: int, payload: Any) -> Reply:
    return Reply(status, json.dumps(payload).encode())


class SimulatorRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "robocall-simulator"
    sys_version = ""
    timeout = 120  # drop idle keep-alive connections eventually
    # Headers and body go out in separate writes; with Nagle on, each answer would wait for
    # the client's delayed ACK (~40 ms).
    disable_nagle_algorithm = True
    server: SimulatorServer

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_HEAD(self) -> None:
        self._serve("HEAD")

    def log_message(self, format: str, *args: Any) -> None:
        # The standard access and error lines quote the request line, query string and all.
        pass

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # The standard message quotes the malformed request line back, key and all; the
        # status's stock phrase says enough.
        super().send_error(code)

    def _serve(self, method: str) -> None:
        started = time.monotonic()
        path = urlsplit(self.path).path
        body = self._read_body()
        route, reply = self._route(method, path, body)
        if reply.drop_connection:
            self.close_connection = True
            self._log(method, route, "dropped", started)
            return
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(reply.body)
            self.wfile.flush()
        except OSError:
            # The client gave up (its timeout, typically during a slow answer): not our error.
            self.close_connection = True
            self._log(method, route, f"{reply.status} (client gone)", started)
            return
        self._log(method, route, str(reply.status), started)

    def _read_body(self) -> bytes:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        if length <= 0:
            return b""
        if length > MAX_CONTROL_BODY:
            self.close_connection = True
            return b""
        return self.rfile.read(length)

    def _route(self, method: str, path: str, body: bytes) -> tuple[str, Reply]:
        """(the path as it may be logged, the reply)."""
        state = self.server.state
        for prefix in API_PREFIXES:
            if path.startswith(prefix) and path[len(prefix) :].rstrip("/") in API_ENDPOINTS:
                if method != "GET":
                    return path, _json_reply(405, {"code": "405", "response": "Method Not Allowed"})
                query = urlsplit(self.path).query
                params = {
                    name: values[0]
                    for name, values in parse_qs(query, keep_blank_values=True).items()
                }
                return path, answer_api_request(state, path[len(prefix) :].rstrip("/"), params)
        if path.startswith(CONTROL_PREFIX):
            handler = CONTROL_ROUTES.get((method, path[len(CONTROL_PREFIX) :].rstrip("/")))
            if handler is None:
                error = {"error": f"no control endpoint {method} {path}"}
                return "(unknown path)", _json_reply(404, error)
            try:
                payload = json.loads(body or b"{}")
            except ValueError:
                return path, _json_reply(400, {"error": "the body must be JSON"})
            if not isinstance(payload, dict):
                return path, _json_reply(400, {"error": "the body must be a JSON object"})
            try:
                return path, _json_reply(200, handler(state, payload))
            except InvalidInput as error:
                return path, _json_reply(400, {"error": str(error)})
        # An unknown path might be anything a client typed, so it is not echoed to the log.
        return "(unknown path)", _json_reply(404, {"code": "404", "response": "Not Found"})

    def _log(self, method: str, route: str, outcome: str, started: float) -> None:
        if self.server.verbose:
            elapsed_ms = (time.monotonic() - started) * 1000
            sys.stderr.write(f"{method} {route} {outcome} {elapsed_ms:.0f}ms\n")
            sys.stderr.flush()


def _health(state: SimulatorState, payload: dict[str, Any]) -> Any:
    return state.health()


def _reset(state: SimulatorState, payload: dict[str, Any]) -> Any:
    state.reset()
    return {"reset": True}


def _add_account(state: SimulatorState, payload: dict[str, Any]) -> Any:
    account = state.add_account(payload)
    # Never echo the key back: this answer may end up in somebody's log.
    return {
        "username": account.username,
        "balance": str(account.balance),
        "call_rate": str(account.call_rate),
        "retry_delays": list(account.retry_delays),
        "retries": account.retries,
    }


def _set_faults(state: SimulatorState, payload: dict[str, Any]) -> Any:
    return {"faults": state.set_faults(payload)}


def _set_scripts(state: SimulatorState, payload: dict[str, Any]) -> Any:
    return {"scripted_callers": state.set_scripts(payload)}


def _set_odds(state: SimulatorState, payload: dict[str, Any]) -> Any:
    odds = state.set_odds(payload)
    return {"answer": odds.answer, "dtmf": dict(odds.dtmf), "unanswered": dict(odds.unanswered)}


def _calls(state: SimulatorState, payload: dict[str, Any]) -> Any:
    return state.calls_report()


def _stats(state: SimulatorState, payload: dict[str, Any]) -> Any:
    return state.stats_report()


CONTROL_ROUTES: dict[tuple[str, str], Callable[[SimulatorState, dict[str, Any]], Any]] = {
    ("GET", "health"): _health,
    ("POST", "reset"): _reset,
    ("POST", "accounts"): _add_account,
    ("POST", "faults"): _set_faults,
    ("POST", "scripts"): _set_scripts,
    ("POST", "odds"): _set_odds,
    ("GET", "calls"): _calls,
    ("GET", "stats"): _stats,
}
