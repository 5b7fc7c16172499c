"""The provider's four endpoints, answered the way Robo Call Pakistan's documentation shows them,
quirks included: `status` as an int or a string, `code` instead of `status` in get_call, 401 or
an HTTP 200 carrying 422 for a bad key. Faults are injected here, per request.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from simulator.state import (
    CALLER_ID_RE,
    InsufficientBalance,
    NewCall,
    SimulatorState,
    StaleRequest,
)

API_ENDPOINTS = ("user_verify", "check_balance", "calls", "get_call")
VOICE_IDS_NEEDING_STORE_NAME = ("48", "49")


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    drop_connection: bool = False  # close the socket without sending anything

    @classmethod
    def json(cls, status: int, payload: Mapping[str, Any]) -> Reply:
        return cls(status, json.dumps(payload).encode())

    @classmethod
    def html(cls, status: int, page: str) -> Reply:
        return cls(status, page.encode(), "text/html; charset=UTF-8")


DROPPED = Reply(0, drop_connection=True)

NGINX_PAGES = {
    502: "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n",
    503: "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n"
    "<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n"
    "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
}
# What a PHP backend shows when it fails but the front still answers 200.
APP_ERROR_PAGE = (
    '<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8">'
    '<title>Server Error</title></head>\n<body><div class="code">500</div>'
    '<div class="message">Server Error</div></body>\n</html>\n'
)


def server_error(state: SimulatorState, code_field: str) -> Reply:
    """A 500 from the app (JSON) or a 502/503 from the proxy in front of it (HTML)."""
    kind = state.choose(("500", "502", "503"))
    if kind == "500":
        code: str | int = "500" if code_field == "code" else 500
        return Reply.json(500, {code_field: code, "response": "Internal Server Error"})
    return Reply.html(int(kind), NGINX_PAGES[int(kind)])


def answer_api_request(state: SimulatorState, endpoint: str, params: Mapping[str, str]) -> Reply:
    state.count_request(endpoint)
    generation = state.generation
    delay = state.request_delay()
    if delay > 0:
        time.sleep(delay)  # outside the lock: other requests carry on meanwhile
    if endpoint == "user_verify":
        return user_verify(state, params)
    if endpoint == "check_balance":
        return check_balance(state, params)
    if endpoint == "calls":
        return place_call(state, params, generation)
    return get_call(state, params)


def user_verify(state: SimulatorState, params: Mapping[str, str]) -> Reply:
    if state.account(params.get("api_key")) is None:
        return Reply.json(401, {"status": 401, "response": "API Key not matched"})
    return Reply.json(200, {"status": 200, "response": "API matched"})


def check_balance(state: SimulatorState, params: Mapping[str, str]) -> Reply:
    if state.fault("check_balance_5xx"):
        return server_error(state, "status")
    account = state.account(params.get("api_key"))
    if account is None:
        # The documented quirk: an error in the body of an HTTP 200.
        return Reply.json(200, {"status": 422, "response": "API Key not matched"})
    return Reply.json(
        200,
        {
            "status": 200,
            "data": {
                "balance": str(state.balance(account)),
                "username": account.username,
                "call_rate": str(account.call_rate),
            },
        },
    )


def _invalid_call_params(params: Mapping[str, str]) -> list[str]:
    invalid = []
    if not CALLER_ID_RE.fullmatch(params.get("caller_id", "")):
        invalid.append("caller_id")
    voice_id = params.get("voice_id", "")
    if not (voice_id.isascii() and voice_id.isdigit() and int(voice_id) > 0):
        invalid.append("voice_id")
    amount = params.get("amount", "")
    if amount:
        try:
            number = Decimal(amount)
        except InvalidOperation:
            invalid.append("amount")
        else:
            if not number.is_finite() or number < 0:
                invalid.append("amount")
    needs_store_name = (
        "voice_id" not in invalid and str(int(voice_id)) in VOICE_IDS_NEEDING_STORE_NAME
    )
    if needs_store_name and not params.get("text1", "").strip():
        invalid.append("text1")
    return invalid


UNAUTHORIZED = {"status": "401", "message": "Unauthorized – Invalid API Key"}


def place_call(state: SimulatorState, params: Mapping[str, str], generation: int) -> Reply:
    account = state.account(params.get("api_key"))
    if account is None:
        return Reply.json(401, UNAUTHORIZED)
    invalid = _invalid_call_params(params)
    if invalid:
        message = f"Bad Request – Invalid Parameters: {', '.join(invalid)}"
        return Reply.json(400, {"status": "400", "message": message})
    new = NewCall(
        caller_id=params["caller_id"],
        voice_id=str(int(params["voice_id"])),
        amount=params.get("amount") or None,
        texts={f"text{n}": params.get(f"text{n}") for n in range(1, 6)},
        keys={f"key{n}": params.get(f"key{n}") for n in range(1, 6)},
    )
    try:
        call = state.insert_call(account, new, generation)
    except InsufficientBalance:
        return Reply.json(400, {"status": "400", "message": "Insufficient balance"})
    except StaleRequest:  # the account it came for was reset away while it waited
        return Reply.json(401, UNAUTHORIZED)
    # The dangerous faults: the call exists and will ring, but the client cannot know it.
    if state.fault("calls_lost_after_insert"):
        state.mark_answer(call.call_id, None)
        return DROPPED
    if state.fault("calls_5xx_after_insert"):
        state.mark_answer(call.call_id, 500)
        return Reply.json(500, {"status": "500", "message": "Internal Server Error"})
    return Reply.json(
        200,
        {
            "status": "200",
            "message": "Call Data inserted successfully",
            "data": {
                "call_id": str(call.call_id),
                "call_to": call.caller_id,
                "amount": call.amount,
                "voice_id": call.voice_id,
            },
            "api_response": "Ok 200",
        },
    )


def get_call(state: SimulatorState, params: Mapping[str, str]) -> Reply:
    raw_call_id = params.get("call_id", "")
    state.count_get_call(raw_call_id)
    if state.fault("get_call_5xx"):
        return server_error(state, "code")
    if state.fault("get_call_html"):
        return Reply.html(200, APP_ERROR_PAGE)
    broken = state.fault("get_call_broken_json")
    reply = _get_call_reply(state, params.get("api_key"), raw_call_id)
    if broken:
        # Cut mid-document, as when the backend dies while streaming its answer.
        return Reply(200, reply.body[: max(1, len(reply.body) // 2)])
    return reply


def _get_call_reply(state: SimulatorState, api_key: str | None, raw_call_id: str) -> Reply:
    if state.account(api_key) is None or api_key is None:
        return Reply.json(401, {"code": "401", "response": "Unauthorized – Invalid API Key"})
    if not raw_call_id:
        message = "Bad Request – Invalid Parameters: call_id"
        return Reply.json(400, {"code": "400", "response": message})
    found = None
    if raw_call_id.isascii() and raw_call_id.isdigit():
        found = state.call_for(api_key, int(raw_call_id))
    if found is None:
        return Reply.json(404, {"code": "404", "response": "Not Found – Invalid Call ID"})
    call, now = found
    return Reply.json(
        200,
        {
            "data": {
                "call_id": call.call_id,
                "call_to": call.caller_id,
                "call_status": now.call_status,
                "dtmf": now.dtmf,
                "retry": now.retry,
                "amount": call.amount,
                "voice_id": call.voice_id,
                "text1": call.texts["text1"],
                "text2": call.texts["text2"],
                "call_charges": str(now.call_charges),
                "created_at": int(call.inserted_at),
                "updated_at": int(now.updated_at),
            },
            "code": "200",
            "response": "Code Executed Successfully",
        },
    )
