"""The Robo Call Pakistan API client: user_verify, check_balance, calls, get_call.

Three things matter more than anything else here:

1. `calls` is a GET that places a real, paid phone call. Nothing retries it: not urllib3, not
   requests, not this client. Its session mounts an adapter with every retry count at zero and
   asks for a fresh connection per request, so a stale pooled socket cannot turn a healthy send
   into an ambiguous one.
2. Every failure is classified for the caller (calls/pipeline/dispatch.py acts on it):
   `ProviderRejected` (definite, nothing placed), `ProviderUnavailable` (the request never left:
   safe to send again), `ProviderAmbiguous` (it may or may not have been acted on).
3. The API key travels in the query string, and requests/urllib3 put the full URL into their
   exception texts and DEBUG logs. This client never lets one of their exceptions escape (its
   own errors are raised outside the `except` block, so no `__context__` carries the URL) and
   builds every message from safe parts only.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import logging
import re
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

import requests
import urllib3.exceptions
from django.conf import settings
from django.utils.translation import gettext_lazy
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from calls.redaction import RedactSecretsFilter, hold_secret, redact, release_secret

if TYPE_CHECKING:
    from calls.models import Store

# urllib3 logs each request line (path and query, so the key) at DEBUG, and each retry at
# WARNING. Every handler in settings.LOGGING redacts; a logger-level filter here also covers
# handlers that do not (pytest's caplog, error trackers that hook the logging module).
for _logger_name in ("urllib3.connectionpool", "urllib3.util.retry", "urllib3.connection"):
    _logger = logging.getLogger(_logger_name)
    if not any(isinstance(f, RedactSecretsFilter) for f in _logger.filters):
        _logger.addFilter(RedactSecretsFilter())

USER_AGENT = "robodash/0.1 (+requests)"
# Provider texts are shown on pages and stored in `last_error`: keep them short.
_MESSAGE_LIMIT = 200
_KEY_WORDS = re.compile(r"api[\s_-]?key", re.IGNORECASE)


# --- Errors ------------------------------------------------------------------------------------


class ProviderError(Exception):
    """A provider request that did not give the answer asked for.

    `str(e)` is safe to log, store and show: it never holds the key or a URL with its query.
    """

    kind: ClassVar[str] = "error"

    def __init__(
        self,
        message: str,
        *,
        endpoint: str = "",
        http_status: int | None = None,
        provider_code: int | None = None,
    ) -> None:
        self.message = redact(message)
        super().__init__(self.message)
        self.endpoint = endpoint
        self.http_status = http_status
        # The status the provider put in its JSON body (`status` or `code`), when it did.
        self.provider_code = provider_code

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only attributes survive pickling (Celery, multiprocessing).
        return (type(self), (self.message,), self.__dict__.copy())


class ProviderRejected(ProviderError):
    """Definite: the provider refused with a reason (4xx, or an error in a 200 body).

    Nothing was placed.
    """

    kind = "rejected"


class InvalidApiKey(ProviderRejected):
    """The provider says the key does not match (401, 422, or in the body)."""


class ProviderUnavailable(ProviderError):
    """Could not connect (refused, DNS, connect timeout), or the provider said "not now"
    (408, 429) before acting. The request was not acted on: safe to send again."""

    kind = "retry"


class ProviderAmbiguous(ProviderError):
    """The request may or may not have been acted on: a read timeout after sending, a reset or
    disconnect, a 5xx, or an answer that cannot be understood. Never resend `calls` on this."""

    kind = "ambiguous"


# --- Answers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountBalance:
    balance: Decimal
    username: str
    call_rate: Decimal


@dataclass(frozen=True)
class PlacedCall:
    call_id: str
    raw: dict[str, Any]


@dataclass(frozen=True)
class CallReport:
    call_id: str
    call_status: int | None
    dtmf: int | None
    retry: int
    call_charges: Decimal | None
    created_at: dt.datetime | None
    updated_at: dt.datetime | None  # aware, UTC
    raw: dict[str, Any]

    ANSWERED: ClassVar[int] = 2

    @property
    def is_answered(self) -> bool:
        return self.call_status == self.ANSWERED


# --- The client --------------------------------------------------------------------------------


def _send_retry() -> Retry:
    # `calls` places a paid call: no retry of any kind, and no redirect followed.
    return Retry(total=0, connect=0, read=0, redirect=0, status=0, other=0, raise_on_status=False)


def _read_retry() -> Retry:
    # Lookups may be repeated: on connect errors (the request never left) and on the gateway
    # statuses a proxy in front of the portal gives while it restarts. Not on read errors: a
    # read timeout already cost `read_timeout` seconds, and the poller tries again later anyway.
    return Retry(
        total=2,
        connect=2,
        read=0,
        redirect=0,
        status=2,
        other=0,
        allowed_methods=frozenset({"GET"}),
        status_forcelist=(502, 503, 504),
        backoff_factor=0.2,
        backoff_max=2.0,
        raise_on_status=False,
        # A Retry-After of minutes would block a worker; the caller reschedules instead.
        respect_retry_after_header=False,
    )


def _session(retry: Retry) -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers.update({"Accept": "application/json", "User-Agent": USER_AGENT})
    return session


def normalise_base_url(base_url: str) -> str:
    """`.../api`, `.../api/`, `.../api/v1` and `.../api/v1/` all become `<base>/`."""
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"ROBOCALL_BASE_URL must be an http(s) URL such as "
            f"https://portal.robocall.pk/api/v1/, not {redact(base_url)!r}"
        )
    if parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError(
            "ROBOCALL_BASE_URL must not carry a query, a fragment or credentials: "
            "the client adds the API key itself"
        )
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}/"


class RobocallClient:
    """One provider account. Not thread-safe (one `requests.Session` each): one per task."""

    def __init__(
        self,
        api_key: str,
        base_url: str | None = None,
        *,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("The store has no provider API key.")
        hold_secret(api_key)  # scrubbed from every log line while this client is open
        self._holding_key = True
        self._api_key = api_key
        self.base_url = normalise_base_url(base_url or settings.ROBOCALL_BASE_URL)
        self._host = urlsplit(self.base_url).netloc
        if connect_timeout is None:
            connect_timeout = settings.ROBOCALL_CONNECT_TIMEOUT
        if read_timeout is None:
            read_timeout = settings.ROBOCALL_READ_TIMEOUT
        # (connect, read), on every request: a `calls` read timeout is ambiguous, never a hang.
        self.timeout = (float(connect_timeout), float(read_timeout))
        self._send_session = _session(_send_retry())
        self._lookup_session = _session(_read_retry())
        # Requests that reached (or were sent toward) the provider, per endpoint: get_call
        # requests are a cost the benchmarks count.
        self.requests_made: collections.Counter[str] = collections.Counter()

    @classmethod
    def for_store(cls, store: Store) -> RobocallClient:
        return cls(store.api_key)

    def __repr__(self) -> str:
        return f"<RobocallClient {self.base_url}>"

    # -- endpoints --

    def verify_key(self) -> bool:
        """True when the provider matches the key, False when it says it does not."""
        try:
            body = self._request("user_verify", {})
        except InvalidApiKey:
            return False
        if _body_code(body) != 200:
            raise _unexpected("user_verify", "says neither matched nor not matched")
        return True

    def check_balance(self) -> AccountBalance:
        body = self._request("check_balance", {})
        data = body.get("data")
        if not isinstance(data, dict):
            raise _unexpected("check_balance", "has no `data` object")
        return AccountBalance(
            balance=_required_decimal("check_balance", data, "balance"),
            username=str(data.get("username") or ""),
            call_rate=_required_decimal("check_balance", data, "call_rate"),
        )

    def place_call(self, params: dict[str, Any]) -> PlacedCall:
        """Send one `calls` request. Never retried: an ambiguous failure is for review."""
        if "api_key" in params:
            raise ValueError("place_call adds the API key itself; pass Call.provider_params().")
        body = self._request("calls", params)
        data = body.get("data")
        call_id = data.get("call_id") if isinstance(data, dict) else None
        valid_id = isinstance(call_id, int | str) and not isinstance(call_id, bool)
        if not valid_id or not str(call_id).strip():
            # Accepted but unidentifiable: the call may be ringing and we cannot follow it.
            raise _unexpected("calls", "accepted the call but gave no call_id")
        return PlacedCall(call_id=str(call_id).strip(), raw=_scrub(body))

    def get_call(self, call_id: str) -> CallReport:
        body = self._request("get_call", {"call_id": call_id})
        data = body.get("data")
        if not isinstance(data, dict):
            raise _unexpected("get_call", "has no `data` object")
        reported_id = data.get("call_id", call_id)
        if str(reported_id).strip() != str(call_id).strip():
            raise _unexpected("get_call", f"answered for call {reported_id!r}, not {call_id!r}")
        return CallReport(
            call_id=str(call_id).strip(),
            call_status=_optional_int("get_call", data, "call_status"),
            dtmf=_optional_int("get_call", data, "dtmf"),
            retry=_optional_int("get_call", data, "retry") or 0,
            call_charges=_optional_decimal("get_call", data, "call_charges"),
            created_at=_optional_time(data.get("created_at")),
            updated_at=_optional_time(data.get("updated_at")),
            raw=_scrub(body),
        )

    # -- lifecycle --

    def close(self) -> None:
        self._send_session.close()
        self._lookup_session.close()
        if self._holding_key:
            self._holding_key = False
            release_secret(self._api_key)

    def __enter__(self) -> RobocallClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- one request --

    def _request(self, endpoint: str, params: dict[str, Any]) -> dict[str, Any]:
        """GET one endpoint and return its JSON body when it says "OK"; raise a ProviderError
        otherwise. Our error is raised outside the `except` so it carries no `__context__`
        (the requests exception, whose text holds the URL and so the key)."""
        placing = endpoint == "calls"
        session = self._send_session if placing else self._lookup_session
        headers = {"Connection": "close"} if placing else None
        self.requests_made[endpoint] += 1
        error: ProviderError | None = None
        try:
            response = session.get(
                self.base_url + endpoint,
                params={"api_key": self._api_key, **params},
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            error = _classify_transport_error(endpoint, exc, self._host)
        if error is not None:
            raise error from None
        self.requests_made[endpoint] += _gateway_retries(response)
        return classify_provider_reply(
            endpoint, response.status_code, response.headers, response.content
        )


# --- Classification ----------------------------------------------------------------------------


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and what it wraps: requests -> urllib3 (MaxRetryError.reason,
    ProtocolError(msg, OSError)) -> socket errors."""
    seen: set[int] = set()
    pending = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [
            *current.args,
            getattr(current, "reason", None),
            getattr(current, "original_error", None),
        ]
        linked += [current.__cause__, current.__context__]
        pending.extend(e for e in linked if isinstance(e, BaseException))


_NEVER_LEFT = (
    requests.exceptions.ConnectTimeout,
    urllib3.exceptions.ConnectTimeoutError,  # NewConnectionError, NameResolutionError included
    ConnectionRefusedError,
    socket.gaierror,
    ssl.SSLCertVerificationError,  # the TLS handshake failed: no HTTP request was written
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    urllib3.exceptions.LocationValueError,
)
_AFTER_SENDING = (
    requests.exceptions.ReadTimeout,
    urllib3.exceptions.ReadTimeoutError,
)


def _classify_transport_error(endpoint: str, exc: BaseException, host: str) -> ProviderError:
    chain = list(_causes(exc))
    innermost = type(chain[-1]).__name__
    # A read timeout is checked first: it can only happen once the request was written.
    if any(isinstance(e, _AFTER_SENDING) for e in chain):
        return ProviderAmbiguous(
            f"{endpoint}: no answer from the provider in time (ReadTimeout); "
            f"the request was sent and may have been acted on",
            endpoint=endpoint,
        )
    if any(isinstance(e, _NEVER_LEFT) for e in chain):
        return ProviderUnavailable(
            f"{endpoint}: could not connect to the provider at {host} ({innermost}); "
            f"the request was not sent",
            endpoint=endpoint,
        )
    return ProviderAmbiguous(
        f"{endpoint}: the connection failed after the request was sent ({innermost}); "
        f"it may have been acted on",
        endpoint=endpoint,
    )


def _gateway_retries(response: requests.Response) -> int:
    """Requests urllib3 repeated after a 502/503/504 (they reached the provider too)."""
    retries = getattr(response.raw, "retries", None)
    history = getattr(retries, "history", ()) or ()
    return sum(1 for attempt in history if attempt.status is not None)


def _status_number(value: Any) -> int | None:
    """The provider's `status`/`code`: 200 or "200" (or "Ok 200"-like text) -> 200."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        match = re.search(r"\b(\d{3})\b", value)
        return int(match.group(1)) if match else None
    return None


def _body_code(body: dict[str, Any]) -> int | None:
    """`status` (get_call says `code`); a non-numeric `status` defers to `code`."""
    code = _status_number(body.get("status"))
    return code if code is not None else _status_number(body.get("code"))


def _provider_message(body: dict[str, Any]) -> str:
    """The provider's own words, shortened and redacted. Laravel-style `errors` included."""
    parts: list[str] = []
    for field in ("message", "response", "error"):
        value = body.get(field)
        if isinstance(value, str) and value.strip():
            parts.append(value.strip())
            break
    errors = body.get("errors")
    if isinstance(errors, dict):
        for field_errors in errors.values():
            items = field_errors if isinstance(field_errors, list) else [field_errors]
            parts.extend(str(item) for item in items if str(item) not in parts)
    text = " ".join(" ".join(parts).split())  # one line: no newlines in log lines or tables
    if len(text) > _MESSAGE_LIMIT:
        text = text[: _MESSAGE_LIMIT - 1] + "…"
    return redact(text)


def _rejection(
    endpoint: str, http_status: int, code: int | None, message: str
) -> ProviderRejected | ProviderUnavailable:
    effective = code if code is not None and code >= 400 else http_status
    reason = message or f"HTTP {effective} with no reason given"
    where = (
        f"HTTP {http_status}"
        if code is None or code == http_status
        else f"HTTP {http_status}, status {code}"
    )
    if effective in (408, 429):
        # The provider said "not now" before acting: safe to send again later.
        return ProviderUnavailable(
            f"{endpoint}: the provider asked us to wait ({where}): {reason}",
            endpoint=endpoint,
            http_status=http_status,
            provider_code=code,
        )
    # user_verify and check_balance take nothing but the key, so their 422 is about it.
    about_key = (
        effective == 401
        or (effective == 422 and endpoint in ("user_verify", "check_balance"))
        or bool(_KEY_WORDS.search(message))
    )
    cls = InvalidApiKey if about_key else ProviderRejected
    text = f"{endpoint}: the provider rejected the request ({where}): {reason}"
    if effective == 404 and not message:
        text += " (check ROBOCALL_BASE_URL)"
    return cls(text, endpoint=endpoint, http_status=http_status, provider_code=code)


def classify_provider_reply(
    endpoint: str, http_status: int, headers: Any, content: bytes
) -> dict[str, Any]:
    """Return the JSON body of a reply that says "OK", or raise the ProviderError it amounts to.

    Normalises the provider's quirks: `status` as "200" or 200, `code` instead of `status`,
    401 or 422 for a bad key, and HTTP 200 carrying an error in its body.
    """
    if 300 <= http_status < 400:
        # Laravel answers a failed validation of a browser-style request with a redirect back;
        # the endpoint did not run. A moved base URL looks the same.
        raise ProviderRejected(
            f"{endpoint}: the provider answered with a redirect (HTTP {http_status}), "
            f"not a result; nothing was done (check ROBOCALL_BASE_URL)",
            endpoint=endpoint,
            http_status=http_status,
        )
    body: Any = None
    parse_problem = ""
    if not content.strip():
        parse_problem = "an empty body"
    else:
        try:
            body = json.loads(content)
        except ValueError:
            content_type = (headers.get("Content-Type") or "no content type").split(";")[0]
            parse_problem = f"a body that is not JSON ({content_type}, {len(content)} bytes)"
        else:
            if not isinstance(body, dict):
                parse_problem = f"a JSON {type(body).__name__}, not an object"
                body = None

    if http_status >= 500 or http_status < 200:
        message = _provider_message(body) if body else ""
        raise _ambiguous(endpoint, f"provider error (HTTP {http_status})", http_status, message)

    code = _body_code(body) if body else None

    if http_status >= 400:
        raise _rejection(endpoint, http_status, code, _provider_message(body) if body else "")

    if body is None:
        raise _ambiguous(
            endpoint, f"the provider answered HTTP {http_status} with {parse_problem}", http_status
        )
    if code is None or code in (200, 201):
        return body
    if 400 <= code < 500:
        # HTTP 200 carrying an error: check_balance's 422 for a bad key, calls' {"status": "400"}.
        raise _rejection(endpoint, http_status, code, _provider_message(body))
    raise _ambiguous(
        endpoint,
        f"the provider answered HTTP {http_status} with status {code}",
        http_status,
        _provider_message(body),
        code,
    )


def _ambiguous(
    endpoint: str, answer: str, http_status: int, message: str = "", code: int | None = None
) -> ProviderAmbiguous:
    """An answer that leaves open whether the request was acted on, worded one way:
    "<endpoint>: <answer>[: <the provider's message>]; the request may have been acted on"."""
    return ProviderAmbiguous(
        f"{endpoint}: {answer}"
        + (f": {message}" if message else "")
        + "; the request may have been acted on",
        endpoint=endpoint,
        http_status=http_status,
        provider_code=code,
    )


def _unexpected(endpoint: str, what: str) -> ProviderAmbiguous:
    return _ambiguous(endpoint, f"the provider's answer {what}", 200)


# --- Field parsing -----------------------------------------------------------------------------


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip().replace(",", "")
    if not text:
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError(text) from None
    if not number.is_finite():
        raise ValueError(text)
    return number


def _required_decimal(endpoint: str, data: dict[str, Any], field: str) -> Decimal:
    try:
        number = _decimal(data.get(field))
    except ValueError:
        number = None
    if number is None:
        raise _unexpected(endpoint, f"has no usable `{field}` ({_shape(data.get(field))})")
    return number


def _optional_decimal(endpoint: str, data: dict[str, Any], field: str) -> Decimal | None:
    try:
        return _decimal(data.get(field))
    except ValueError:
        pass
    raise _unexpected(endpoint, f"has an unusable `{field}` ({_shape(data.get(field))})")


def _optional_int(endpoint: str, data: dict[str, Any], field: str) -> int | None:
    value = data.get(field)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None  # `dtmf` is null until a key is pressed
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise _unexpected(endpoint, f"has an unusable `{field}` ({_shape(value)})")


def _optional_time(value: Any) -> dt.datetime | None:
    """Unix seconds (int or digit string) -> aware UTC. An ISO time with an offset is accepted;
    anything else is left in `raw` rather than guessed at."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int | float):
        try:
            return dt.datetime.fromtimestamp(value, tz=dt.UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed.astimezone(dt.UTC) if parsed.tzinfo else None
    return None


def _shape(value: Any) -> str:
    """Describe a bad value without echoing much of it."""
    if isinstance(value, str):
        return repr(redact(value[:20]))
    return type(value).__name__


def _scrub(value: Any) -> Any:
    """The provider's body, to be stored: without any echoed `api_key` field or key text."""
    if isinstance(value, dict):
        return {
            k: _scrub(v) for k, v in value.items() if str(k).lower().replace("-", "_") != "api_key"
        }
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, str):
        return redact(value)
    return value


# --- In words, for merchants -------------------------------------------------------------------
# A provider failure's message names the endpoint, the HTTP status and the provider's own words:
# right for the logs and for support, not for a merchant's page. These are the sentences shown
# instead; the detail stays in the logs and on the call page's section for support.

# Lazy: translated when shown, in the language of the page.
KEY_REJECTED = gettext_lazy(
    "The provider rejected this store's API key. Check the key in the store's settings."
)
NOT_ANSWERING = gettext_lazy("The provider is not answering right now.")
UNCLEAR_ANSWER = gettext_lazy(
    "The provider's answer was unclear, so robodash did not repeat the request; "
    "support can see the detail."
)
REFUSED = gettext_lazy("The provider refused the request; support can see the detail.")

_KEY_REJECTED_TEXT = re.compile(r"rejected the api key|api key not matched", re.IGNORECASE)


def in_plain_words(error: ProviderError | str) -> str:
    """The sentence a merchant sees for `error` (a ProviderError, or the text of one as stored
    in a call's last error)."""
    if isinstance(error, InvalidApiKey):
        return str(KEY_REJECTED)
    if isinstance(error, ProviderUnavailable):
        return str(NOT_ANSWERING)
    if isinstance(error, ProviderAmbiguous):
        return str(UNCLEAR_ANSWER)
    if isinstance(error, ProviderError):
        return str(REFUSED)
    text = str(error)
    if _KEY_REJECTED_TEXT.search(text):
        return str(KEY_REJECTED)
    if "could not connect" in text or "asked us to wait" in text:
        return str(NOT_ANSWERING)
    if "may have been acted on" in text or "provider error" in text:
        return str(UNCLEAR_ANSWER)
    if "rejected the request" in text or "redirect" in text:
        return str(REFUSED)
    return text
