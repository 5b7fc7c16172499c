"""The provider client over real HTTP: against the simulator, and against canned replies from a
small in-test server for the documented quirks the simulator does not produce."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import pickle
import socket
import threading
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from calls.pipeline.provider import (
    AccountBalance,
    CallReport,
    InvalidApiKey,
    ProviderAmbiguous,
    ProviderError,
    ProviderRejected,
    ProviderUnavailable,
    RobocallClient,
    in_plain_words,
    normalise_base_url,
)
from calls.redaction import RedactSecretsFilter
from tests.conftest import TEST_API_KEY

WRONG_KEY = "sk-wrong-0011223344556677889900aabbccdd"
CALL_PARAMS = {"caller_id": "923001234567", "amount": "1500", "voice_id": 102, "text1": "My Store"}
SECRETS = (TEST_API_KEY, WRONG_KEY)


# --- helpers -----------------------------------------------------------------------------------


def assert_no_secret(error: BaseException) -> None:
    """Every text an error can become: str, repr, args, and a full traceback."""
    texts = [
        str(error),
        repr(error),
        repr(error.args),
        "".join(traceback.format_exception(error)),
    ]
    for text in texts:
        for secret in SECRETS:
            assert secret not in text
        assert "api_key=" not in text
    # Nothing hides behind the error either: a requests exception holds the full URL.
    assert error.__cause__ is None
    assert error.__context__ is None


def expect_error(
    kind: type[ProviderError], action: Callable[..., Any], *args: Any
) -> ProviderError:
    """Run `action`, demand exactly `kind` (not a subclass), and check it leaks no key."""
    with pytest.raises(ProviderError) as caught:
        action(*args)
    error = caught.value
    assert type(error) is kind, f"{type(error).__name__}: {error}"
    assert_no_secret(error)
    return error


@pytest.fixture
def client(simulator) -> Iterator[RobocallClient]:
    with RobocallClient(
        TEST_API_KEY, simulator.base_url, connect_timeout=2, read_timeout=5
    ) as client:
        yield client


def calls_seen(simulator) -> int:
    return simulator.stats()["requests"].get("calls", 0)


def unused_port() -> int:
    """A port with nothing listening: bound, then closed, by us."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Canned:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


class CannedProvider:
    """A real HTTP server answering each endpoint with what the test set, counting requests."""

    def __init__(self) -> None:
        self.replies: dict[str, Canned] = {}
        self.hits: Counter[str] = Counter()
        self.queries: list[dict[str, list[str]]] = []
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                endpoint = parts.path.rstrip("/").rsplit("/", 1)[-1]
                provider.hits[endpoint] += 1
                provider.queries.append(parse_qs(parts.query))
                reply = provider.replies.get(endpoint, Canned(404, b""))
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                for name, value in reply.headers:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the request line holds the key

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/api/v1/"

    def reply(
        self,
        endpoint: str,
        status: int,
        body: dict[str, Any] | str | bytes,
        content_type: str = "application/json",
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        if isinstance(body, dict):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        self.replies[endpoint] = Canned(status, body, content_type, headers)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def canned() -> Iterator[CannedProvider]:
    provider = CannedProvider()
    try:
        yield provider
    finally:
        provider.close()


@pytest.fixture
def canned_client(canned: CannedProvider) -> Iterator[RobocallClient]:
    with RobocallClient(TEST_API_KEY, canned.base_url, connect_timeout=2, read_timeout=2) as c:
        yield c


# --- against the simulator ---------------------------------------------------------------------


def test_verify_key_is_true_for_a_key_the_provider_knows(client: RobocallClient) -> None:
    assert client.verify_key() is True


def test_verify_key_is_false_for_a_key_the_provider_does_not_know(simulator) -> None:
    with RobocallClient(WRONG_KEY, simulator.base_url) as client:
        assert client.verify_key() is False


def test_check_balance_reads_money_as_decimals(client: RobocallClient) -> None:
    balance = client.check_balance()

    assert balance == AccountBalance(
        balance=Decimal("5000.00"), username="teststore", call_rate=Decimal("5.50")
    )


def test_check_balance_with_a_wrong_key_is_invalid_api_key_though_http_says_200(
    simulator,
) -> None:
    with RobocallClient(WRONG_KEY, simulator.base_url) as client:
        error = expect_error(InvalidApiKey, client.check_balance)

    assert error.kind == "rejected"
    assert error.http_status == 200
    assert error.provider_code == 422
    assert "API Key not matched" in str(error)


def test_place_call_returns_the_providers_call_id(client: RobocallClient, simulator) -> None:
    placed = client.place_call(CALL_PARAMS)

    assert placed.call_id.isdigit()
    assert placed.raw["data"]["call_to"] == "923001234567"
    assert calls_seen(simulator) == 1
    assert client.requests_made["calls"] == 1


def test_place_call_with_a_wrong_key_is_invalid_api_key(simulator) -> None:
    with RobocallClient(WRONG_KEY, simulator.base_url) as client:
        error = expect_error(InvalidApiKey, client.place_call, CALL_PARAMS)

    assert error.http_status == 401


def test_place_call_with_bad_parameters_is_rejected_with_the_providers_reason(
    client: RobocallClient,
) -> None:
    error = expect_error(ProviderRejected, client.place_call, {**CALL_PARAMS, "caller_id": "12"})

    assert error.http_status == 400
    assert "caller_id" in str(error)


def test_place_call_refuses_params_that_carry_a_key(client: RobocallClient) -> None:
    with pytest.raises(ValueError, match="adds the API key itself"):
        client.place_call({**CALL_PARAMS, "api_key": "x"})


def test_get_call_reads_the_report_with_the_providers_types_normalised(
    client: RobocallClient,
) -> None:
    placed = client.place_call(CALL_PARAMS)

    report = client.get_call(placed.call_id)

    assert isinstance(report, CallReport)
    assert report.call_id == placed.call_id  # the provider answers with an int
    assert report.call_status in (1, 8)  # just placed: pushed to SIP or ringing
    assert report.dtmf is None
    assert report.retry == 0
    assert report.call_charges == Decimal("0.00")
    assert report.is_answered is False
    assert report.created_at is not None
    assert report.created_at.tzinfo == dt.UTC
    assert abs(report.created_at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)
    assert report.updated_at is not None and report.updated_at.tzinfo == dt.UTC
    assert client.requests_made["get_call"] == 1


def test_get_call_of_an_unknown_call_is_rejected_as_not_found(client: RobocallClient) -> None:
    error = expect_error(ProviderRejected, client.get_call, "999999")

    assert error.http_status == 404
    assert error.provider_code == 404


@pytest.mark.parametrize("path", ["/api", "/api/", "/api/v1", "/api/v1/"])
def test_every_documented_base_url_form_reaches_the_provider(simulator, path: str) -> None:
    parts = urlsplit(simulator.base_url)
    with RobocallClient(TEST_API_KEY, f"{parts.scheme}://{parts.netloc}{path}") as client:
        assert client.verify_key() is True
        assert client.check_balance().username == "teststore"
        placed = client.place_call(CALL_PARAMS)
        assert client.get_call(placed.call_id).call_id == placed.call_id


@pytest.mark.parametrize("fault", ["get_call_5xx", "get_call_html", "get_call_broken_json"])
def test_a_broken_get_call_answer_is_ambiguous(
    client: RobocallClient, simulator, fault: str
) -> None:
    placed = client.place_call(CALL_PARAMS)
    simulator.set_faults(**{fault: 1.0})

    error = expect_error(ProviderAmbiguous, client.get_call, placed.call_id)

    assert error.kind == "ambiguous"
    assert error.endpoint == "get_call"


@pytest.mark.parametrize(
    ("faults", "read_timeout"),
    [
        ({"calls_lost_after_insert": 1.0}, 5.0),
        ({"calls_5xx_after_insert": 1.0}, 5.0),
        ({"slow_rate": 1.0, "slow_seconds": 3.0}, 0.5),
    ],
    ids=["connection-dropped", "server-error", "read-timeout"],
)
def test_a_lost_answer_to_calls_is_ambiguous_and_never_sent_twice(
    simulator, faults: dict[str, float], read_timeout: float
) -> None:
    simulator.set_faults(**faults)
    with RobocallClient(TEST_API_KEY, simulator.base_url, read_timeout=read_timeout) as client:
        error = expect_error(ProviderAmbiguous, client.place_call, CALL_PARAMS)

    assert error.endpoint == "calls"
    assert "may have been" in str(error)
    # The simulator counts a request when it arrives: every retry would have arrived already.
    assert calls_seen(simulator) == 1
    assert client.requests_made["calls"] == 1


def test_a_slow_lookup_is_ambiguous_after_the_read_timeout(simulator) -> None:
    simulator.set_faults(slow_rate=1.0, slow_seconds=3.0)
    with RobocallClient(TEST_API_KEY, simulator.base_url, read_timeout=0.3) as client:
        error = expect_error(ProviderAmbiguous, client.check_balance)

    assert "ReadTimeout" in str(error)


@pytest.mark.parametrize("action", ["verify_key", "check_balance", "place_call", "get_call"])
def test_a_port_with_nothing_listening_is_unavailable_and_safe_to_retry(action: str) -> None:
    client = RobocallClient(TEST_API_KEY, f"http://127.0.0.1:{unused_port()}/api/v1/")
    call: Callable[..., Any] = getattr(client, action)
    args = {"place_call": (CALL_PARAMS,), "get_call": ("1",)}.get(action, ())

    error = expect_error(ProviderUnavailable, call, *args)

    assert error.kind == "retry"
    assert "could not connect" in str(error)
    client.close()


def test_an_unknown_host_is_unavailable() -> None:
    with RobocallClient(TEST_API_KEY, "http://robocall.invalid/api/v1/", connect_timeout=2) as c:
        expect_error(ProviderUnavailable, c.place_call, CALL_PARAMS)


# --- canned replies: quirks the simulator does not produce -------------------------------------


def test_calls_accepts_status_200_as_a_number_and_call_id_as_a_number(
    canned: CannedProvider, canned_client: RobocallClient
) -> None:
    canned.reply("calls", 200, {"status": 200, "data": {"call_id": 20076}})

    placed = canned_client.place_call(CALL_PARAMS)

    assert placed.call_id == "20076"
    query = canned.queries[-1]
    assert query["api_key"] == [TEST_API_KEY]
    assert query["caller_id"] == ["923001234567"]


def test_calls_answering_http_200_with_status_400_in_the_body_is_rejected(
    canned: CannedProvider, canned_client: RobocallClient
) -> None:
    canned.reply("calls", 200, {"status": "400", "message": "Invalid voice_id"})

    error = expect_error(ProviderRejected, canned_client.place_call, CALL_PARAMS)

    assert (error.http_status, error.provider_code) == (200, 400)
    assert "Invalid voice_id" in str(error)


def test_calls_answering_http_200_with_an_empty_body_is_ambiguous(
    canned: CannedProvider, canned_client: RobocallClient
) -> None:
    canned.reply("calls", 200, b"")

    error = expect_error(ProviderAmbiguous, canned_client.place_call, CALL_PARAMS)

    assert "empty body" in str(error)


def test_calls_accepted_without_a_call_id_is_ambiguous(
    canned: CannedProvider, canned_client: RobocallClient
) -> None:
    canned.reply("calls", 200, {"status": "200", "message": "Call Data inserted successfully"})

    error = expect_error(ProviderAmbiguous, canned_client.place_call, CALL_PARAMS)

    assert "no call_id" in str(error)


def test_a_gateway_error_on_calls_is_ambiguous_and_not_retried(
    canned: CannedProvider, canned_client: RobocallClient
) -> None:
    canned.reply("calls", 503, "<html>503 Service Temporarily Unavailable</html>", "text/html")

    error = expect_error(ProviderAmbiguous, canned_client.place_call, CALL_PARAMS)

    assert error.http_status == 503
    assert canned.hits["calls"] == 1


@pytest.mark.parametrize(
    ("status", "body", "said", "code"),
    [
        (503, {"message": "maintenance"}, "provider error (HTTP 503): maintenance", None),
        (200, b"", "the provider answered HTTP 200 with an empty body", None),
        (
            200,
            {"status": 500, "message": "oops"},
            "the provider answered HTTP 200 with status 500: oops",
            500,
        ),
        (
            200,
            {"status": "200"},
            "the provider's answer accepted the call but gave no call_id",
            None,
        ),
    ],
)
def test_every_unclear_answer_is_worded_one_way_and_read_back_as_unclear(
    canned: CannedProvider,
    canned_client: RobocallClient,
    status: int,
    body: dict[str, Any] | bytes,
    said: str,
    code: int | None,
) -> None:
    canned.reply("calls", status, body)

    error = expect_error(ProviderAmbiguous, canned_client.place_call, CALL_PARAMS)

    assert str(error) == f"calls: {said}; the request may have been acted on"
    assert (error.http_status, error.provider_code) == (status, code)
    # A call's stored last error is that text: read back, it is still an unclear answer.
    assert in_plain_words(str(error)) == in_plain_words(error)


def test_a_gateway_error_on_get_call_is_retried_then_ambiguous(
    canned: CannedProvider, canned_client: RobocallClient
) -> None:
    canned.reply("get_call", 503, "<html>503 Service Temporarily Unavailable</html>", "text/html")

    expect_error(ProviderAmbiguous, canned_client.get_call, "20076")

    assert canned.hits["get_call"] == 3
    assert canned_client.requests_made["get_call"] == 3  # each one a cost


def test_a_redirect_is_not_followed_and_is_a_rejection(
    canned: CannedProvider, canned_client: RobocallClient
) -> None:
    canned.reply("calls", 302, b"", headers=(("Location", "/api/v1/elsewhere"),))

    error = expect_error(ProviderRejected, canned_client.place_call, CALL_PARAMS)

    assert "redirect" in str(error)
    assert canned.hits == Counter({"calls": 1})


def test_too_many_requests_means_wait_and_send_again(
    canned: CannedProvider, canned_client: RobocallClient
) -> None:
    canned.reply("calls", 429, {"status": "429", "message": "Too Many Requests"})

    error = expect_error(ProviderUnavailable, canned_client.place_call, CALL_PARAMS)

    assert error.http_status == 429


def test_get_call_tolerates_string_numbers_and_numeric_charges(
    canned: CannedProvider, canned_client: RobocallClient
) -> None:
    canned.reply(
        "get_call",
        200,
        {
            "status": 200,
            "data": {
                "call_id": "20076",
                "call_status": "2",
                "dtmf": "1",
                "retry": None,
                "call_charges": 6.9,
                "created_at": "1729323834",
                "updated_at": 1729323900,
            },
        },
    )

    report = canned_client.get_call("20076")

    assert (report.call_status, report.dtmf, report.retry) == (2, 1, 0)
    assert report.is_answered
    assert report.call_charges == Decimal("6.9")
    assert report.created_at == dt.datetime(2024, 10, 19, 7, 43, 54, tzinfo=dt.UTC)
    assert report.updated_at == dt.datetime(2024, 10, 19, 7, 45, tzinfo=dt.UTC)


def test_get_call_answering_for_another_call_is_ambiguous(
    canned: CannedProvider, canned_client: RobocallClient
) -> None:
    canned.reply("get_call", 200, {"code": "200", "data": {"call_id": 1, "call_status": 2}})

    expect_error(ProviderAmbiguous, canned_client.get_call, "20076")


def test_get_call_with_an_unreadable_charge_is_ambiguous(
    canned: CannedProvider, canned_client: RobocallClient
) -> None:
    canned.reply("get_call", 200, {"code": "200", "data": {"call_id": 7, "call_charges": "n/a"}})

    expect_error(ProviderAmbiguous, canned_client.get_call, "7")


def test_check_balance_with_a_422_and_no_words_is_still_about_the_key(
    canned: CannedProvider, canned_client: RobocallClient
) -> None:
    canned.reply("check_balance", 422, {"status": 422})

    expect_error(InvalidApiKey, canned_client.check_balance)


def test_a_key_the_provider_echoes_back_is_scrubbed(
    canned: CannedProvider, canned_client: RobocallClient
) -> None:
    canned.reply(
        "calls",
        200,
        {"status": "200", "api_key": TEST_API_KEY, "data": {"call_id": "5", "note": TEST_API_KEY}},
    )
    canned.reply("get_call", 400, {"code": "400", "response": f"bad request for {TEST_API_KEY}"})

    placed = canned_client.place_call(CALL_PARAMS)
    error = expect_error(ProviderRejected, canned_client.get_call, "5")

    assert TEST_API_KEY not in json.dumps(placed.raw)
    assert "api_key" not in placed.raw
    assert "[redacted]" in str(error)


# --- configuration and secrets -----------------------------------------------------------------


@pytest.mark.parametrize(
    "base_url",
    [
        "https://portal.robocall.pk/api",
        "https://portal.robocall.pk/api/",
        "https://portal.robocall.pk/api/v1",
        "https://portal.robocall.pk/api/v1/",
    ],
)
def test_base_urls_are_normalised_to_end_with_one_slash(base_url: str) -> None:
    assert normalise_base_url(base_url) == base_url.rstrip("/") + "/"


@pytest.mark.parametrize(
    "base_url", ["portal.robocall.pk/api", "ftp://x/api", "https://x/api?api_key=abc"]
)
def test_a_base_url_that_cannot_work_is_refused_up_front(base_url: str) -> None:
    with pytest.raises(ValueError, match="ROBOCALL_BASE_URL"):
        RobocallClient(TEST_API_KEY, base_url)


def test_the_defaults_come_from_settings(settings) -> None:
    settings.ROBOCALL_BASE_URL = "https://portal.robocall.pk/api/v1"
    settings.ROBOCALL_CONNECT_TIMEOUT = 1.5
    settings.ROBOCALL_READ_TIMEOUT = 7

    with RobocallClient(TEST_API_KEY) as client:
        assert client.base_url == "https://portal.robocall.pk/api/v1/"
        assert client.timeout == (1.5, 7.0)
        assert TEST_API_KEY not in repr(client)


def test_errors_survive_pickling_with_their_attributes() -> None:
    error = InvalidApiKey("calls: rejected", endpoint="calls", http_status=401, provider_code=401)

    copy = pickle.loads(pickle.dumps(error))

    assert (type(copy), str(copy), copy.endpoint, copy.http_status, copy.provider_code) == (
        InvalidApiKey,
        "calls: rejected",
        "calls",
        401,
        401,
    )


@pytest.fixture
def debug_log() -> Iterator[tuple[io.StringIO, logging.Handler]]:
    """The root logger at DEBUG into a StringIO, restored afterwards."""
    output = io.StringIO()
    handler = logging.StreamHandler(output)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield output, handler
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)


def run_a_full_session(simulator) -> None:
    with RobocallClient(TEST_API_KEY, simulator.base_url, read_timeout=0.5) as client:
        client.verify_key()
        client.check_balance()
        placed = client.place_call(CALL_PARAMS)
        client.get_call(placed.call_id)
        with pytest.raises(ProviderRejected):
            client.get_call("999999")
        simulator.set_faults(get_call_5xx=1.0)
        with pytest.raises(ProviderAmbiguous):
            client.get_call(placed.call_id)  # urllib3 logs its retries at WARNING
        simulator.set_faults(slow_rate=1.0, slow_seconds=2.0)
        with pytest.raises(ProviderAmbiguous):
            client.place_call(CALL_PARAMS)
    nowhere = f"http://127.0.0.1:{unused_port()}/api/"
    with RobocallClient(TEST_API_KEY, nowhere) as client, pytest.raises(ProviderUnavailable):
        client.get_call("1")  # connect retries, logged with the URL


def test_a_full_session_logged_at_debug_leaves_no_key(debug_log, simulator) -> None:
    output, handler = debug_log
    handler.addFilter(RedactSecretsFilter())

    run_a_full_session(simulator)

    text = output.getvalue()
    assert "urllib3.connectionpool DEBUG" in text  # the lines that carry the URL were logged
    assert "/get_call?[redacted]" in text
    assert TEST_API_KEY not in text


def test_a_call_logged_at_debug_shows_no_phone_amount_or_order_id(debug_log, simulator) -> None:
    """urllib3 logs the `calls` URL at DEBUG; its query is the customer's order."""
    output, handler = debug_log
    handler.addFilter(RedactSecretsFilter())
    order = {
        "caller_id": "923009876543",
        "amount": "4321",
        "voice_id": 102,
        "text1": "My Store",
        "text2": "ORD-7731-XYZ",
    }
    with RobocallClient(TEST_API_KEY, simulator.base_url) as client:
        client.place_call(order)

    text = output.getvalue()
    assert "/calls?[redacted]" in text  # the request line was logged, without its query
    for customer_data in ("923009876543", "ORD-7731-XYZ", "amount=4321", TEST_API_KEY):
        assert customer_data not in text


def test_urllib3_lines_reach_every_handler_already_redacted(simulator) -> None:
    """A handler without the filter (caplog, an error tracker) still never sees the key."""
    output = io.StringIO()
    handler = logging.StreamHandler(output)
    # On the `urllib3` logger, this handler runs before any root handler could redact.
    urllib3_logger = logging.getLogger("urllib3")
    previous_level = urllib3_logger.level
    urllib3_logger.addHandler(handler)
    urllib3_logger.setLevel(logging.DEBUG)
    try:
        run_a_full_session(simulator)
    finally:
        urllib3_logger.removeHandler(handler)
        urllib3_logger.setLevel(previous_level)

    text = output.getvalue()
    assert "Retrying" in text
    assert "?[redacted]" in text
    assert TEST_API_KEY not in text
