"""The provider simulator over real HTTP: the documented shapes and quirks, call progression,
retries, charges, faults, the control API, determinism, and keys kept out of its output."""

import http.client
import itertools
import json
import socket
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

import pytest
import requests

from simulator.control import SimulatorError, SimulatorProcess
from tests.conftest import TEST_API_KEY

PREFIXES = ["api/", "api/v1/"]
CUSTOMER = "923001234567"
FAST_KEY = "fast-retry-key-4d1c"  # an account whose retries come after fractions of a second

T = TypeVar("T")


def wait_for(condition: Callable[[], T], timeout: float = 10.0, interval: float = 0.02) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last value {value!r})")
        time.sleep(interval)


def api(
    sim: SimulatorProcess, endpoint: str, prefix: str = "api/v1/", **params: Any
) -> requests.Response:
    return requests.get(f"{sim.root_url}{prefix}{endpoint}", params=params, timeout=10)


def place_call(
    sim: SimulatorProcess, caller_id: str = CUSTOMER, api_key: str = TEST_API_KEY, **extra: Any
) -> str:
    params = {"api_key": api_key, "caller_id": caller_id, "voice_id": "102", "amount": "1500"}
    params |= {"text1": "Karachi Kitchenware", "text2": "ORD-1"} | extra
    response = api(sim, "calls", **params)
    assert response.status_code == 200, response.text
    return response.json()["data"]["call_id"]


def get_call(sim: SimulatorProcess, call_id: str, api_key: str = TEST_API_KEY) -> dict[str, Any]:
    response = api(sim, "get_call", api_key=api_key, call_id=call_id)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def balance(sim: SimulatorProcess, api_key: str = TEST_API_KEY) -> Decimal:
    return Decimal(api(sim, "check_balance", api_key=api_key).json()["data"]["balance"])


def follow(sim: SimulatorProcess, call_id: str, api_key: str = TEST_API_KEY) -> list[tuple]:
    """Poll get_call until the call is final; the distinct (status, dtmf, retry, charges) seen."""
    seen: list[tuple] = []
    final_at = sim.call(call_id)["final_at"]

    def final_and_shown() -> bool:
        # Only an answer to a request sent after final_at is sure to show the final state.
        asked_at = time.time()
        data = get_call(sim, call_id, api_key)
        state = (data["call_status"], data["dtmf"], data["retry"], data["call_charges"])
        if not seen or seen[-1] != state:
            seen.append(state)
        return asked_at > final_at

    wait_for(final_and_shown)
    return seen


@pytest.fixture
def fast(simulator: SimulatorProcess) -> SimulatorProcess:
    """The session simulator with one more account: two retries, 0.4 s then 0.6 s apart."""
    simulator.add_account(
        api_key=FAST_KEY,
        username="fastshop",
        balance="100.00",
        call_rate="4.00",
        retry_delays=[0.4, 0.6],
        retries=2,
    )
    return simulator


# --- the documented shapes ------------------------------------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
def test_user_verify_matches_a_known_key_and_answers_401_to_others(simulator, prefix):
    ok = api(simulator, "user_verify", prefix, api_key=TEST_API_KEY)
    assert (ok.status_code, ok.json()) == (200, {"status": 200, "response": "API matched"})
    for params in ({"api_key": "wrong"}, {}):
        bad = api(simulator, "user_verify", prefix, **params)
        assert bad.status_code == 401
        assert bad.json() == {"status": 401, "response": "API Key not matched"}


@pytest.mark.parametrize("prefix", PREFIXES)
def test_check_balance_gives_strings_and_a_bad_key_gets_422_inside_an_http_200(simulator, prefix):
    ok = api(simulator, "check_balance", prefix, api_key=TEST_API_KEY)
    assert ok.status_code == 200
    assert ok.json() == {
        "status": 200,
        "data": {"balance": "5000.00", "username": "teststore", "call_rate": "5.50"},
    }
    bad = api(simulator, "check_balance", prefix, api_key="wrong")
    assert bad.status_code == 200
    assert bad.json() == {"status": 422, "response": "API Key not matched"}


@pytest.mark.parametrize("prefix", PREFIXES)
def test_calls_inserts_a_call_and_get_call_shows_it_with_the_documented_shapes(simulator, prefix):
    params = {"api_key": TEST_API_KEY, "caller_id": CUSTOMER, "voice_id": "102", "amount": "1500"}
    params |= {"text1": "My Store", "text2": "ORD12345", "key1": "0", "text3": "0"}
    inserted = api(simulator, "calls", prefix, **params)
    assert inserted.status_code == 200
    body = inserted.json()
    call_id = body["data"]["call_id"]
    assert isinstance(call_id, str) and call_id.isdigit()
    assert body == {
        "status": "200",
        "message": "Call Data inserted successfully",
        "data": {"call_id": call_id, "call_to": CUSTOMER, "amount": "1500", "voice_id": "102"},
        "api_response": "Ok 200",
    }

    before = time.time()
    shown = api(simulator, "get_call", prefix, api_key=TEST_API_KEY, call_id=call_id)
    assert shown.status_code == 200
    reply = shown.json()
    assert (reply["code"], reply["response"]) == ("200", "Code Executed Successfully")
    assert "status" not in reply
    data = reply["data"]
    assert data | {"call_status": None, "created_at": None, "updated_at": None} == {
        "call_id": int(call_id),
        "call_to": CUSTOMER,
        "call_status": None,
        "dtmf": None,
        "retry": 0,
        "amount": "1500",
        "voice_id": "102",
        "text1": "My Store",
        "text2": "ORD12345",
        "call_charges": "0.00",
        "created_at": None,
        "updated_at": None,
    }
    assert data["call_status"] in (8, 1)  # a fresh call is still at SIP or ringing
    assert abs(data["created_at"] - before) <= 2 and data["updated_at"] >= data["created_at"]

    recorded = simulator.call(call_id)
    assert recorded["username"] == "teststore"
    assert (recorded["key1"], recorded["text3"], recorded["key2"]) == ("0", "0", None)


def test_calls_answers_a_bad_key_with_401_before_looking_at_the_parameters(simulator):
    response = api(simulator, "calls", api_key="wrong", caller_id="nonsense")
    assert response.status_code == 401
    assert response.json() == {"status": "401", "message": "Unauthorized – Invalid API Key"}
    assert simulator.calls() == []


@pytest.mark.parametrize(
    ("params", "which"),
    [
        ({}, "caller_id, voice_id"),
        ({"caller_id": "03001234567", "voice_id": "102"}, "caller_id"),
        ({"caller_id": "9230012345678", "voice_id": "102"}, "caller_id"),
        ({"caller_id": "+923001234567", "voice_id": "102"}, "caller_id"),
        ({"caller_id": CUSTOMER, "voice_id": "abc"}, "voice_id"),
        ({"caller_id": CUSTOMER, "voice_id": "102", "amount": "lots"}, "amount"),
        ({"caller_id": CUSTOMER, "voice_id": "48"}, "text1"),
        ({"caller_id": CUSTOMER, "voice_id": "49", "text1": " "}, "text1"),
    ],
)
def test_calls_names_each_invalid_parameter_in_a_400(simulator, params, which):
    response = api(simulator, "calls", api_key=TEST_API_KEY, **params)
    assert response.status_code == 400
    assert response.json() == {
        "status": "400",
        "message": f"Bad Request – Invalid Parameters: {which}",
    }
    assert simulator.calls() == []


def test_calls_accepts_voice_48_with_a_store_name(simulator):
    place_call(simulator, voice_id="48", text1="My Store")
    assert len(simulator.calls()) == 1


def test_calls_refuses_an_account_whose_balance_is_below_one_call_rate(simulator):
    simulator.add_account(api_key="poor-key", username="poor", balance="5.49", call_rate="5.50")
    response = api(simulator, "calls", api_key="poor-key", caller_id=CUSTOMER, voice_id="102")
    assert response.status_code == 400
    assert response.json() == {"status": "400", "message": "Insufficient balance"}
    assert simulator.calls() == []


def test_get_call_answers_unknown_foreign_and_unauthorised_requests_like_the_doc(simulator):
    simulator.add_account(api_key="other-shop-key", username="other")
    foreign = place_call(simulator, api_key="other-shop-key")
    not_found = {"code": "404", "response": "Not Found – Invalid Call ID"}
    for call_id in ("999999999", "abc", foreign):
        response = api(simulator, "get_call", api_key=TEST_API_KEY, call_id=call_id)
        assert (response.status_code, response.json()) == (404, not_found)
    unauthorised = api(simulator, "get_call", api_key="wrong", call_id=foreign)
    assert unauthorised.status_code == 401
    assert unauthorised.json() == {"code": "401", "response": "Unauthorized – Invalid API Key"}
    missing = api(simulator, "get_call", api_key=TEST_API_KEY)
    assert missing.status_code == 400
    assert "call_id" in missing.json()["response"]


@pytest.mark.parametrize("path", ["api/v1/place_order", "api/v2/calls", "favicon.ico"])
def test_an_unknown_path_is_a_json_404(simulator, path):
    response = requests.get(f"{simulator.root_url}{path}", timeout=5)
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["code"] == "404"


def test_one_connection_serves_several_requests(simulator):
    connection = http.client.HTTPConnection(simulator.host, simulator.port, timeout=5)
    try:
        for _ in range(3):
            connection.request("GET", f"/api/v1/user_verify?api_key={TEST_API_KEY}")
            response = connection.getresponse()
            assert response.status == 200
            assert json.loads(response.read())["response"] == "API matched"
            assert not response.will_close
    finally:
        connection.close()


# --- call progression, retries and charges --------------------------------------------------


def test_a_scripted_answer_goes_8_then_1_then_2_with_its_dtmf_and_charges(simulator):
    simulator.set_scripts(
        {
            CUSTOMER: [
                {"status": 2, "dtmf": 1, "sip_seconds": 30, "ring_seconds": 30, "talk_seconds": 40}
            ]
        }
    )
    call_id = place_call(simulator)

    seen = follow(simulator, call_id)

    # 40 s of talk is two 30 s pulses at 5.50; nothing is charged before the answer shows.
    assert seen == [(8, None, 0, "0.00"), (1, None, 0, "0.00"), (2, 1, 0, "11.00")]
    recorded = simulator.call(call_id)
    # Status 2 appears only at the end of the talk: (30 + 30 + 40) s / speed 60.
    assert recorded["final_at"] - recorded["inserted_at"] == pytest.approx(100 / 60)
    assert recorded["final"] == {"call_status": 2, "dtmf": 1, "retry": 0, "call_charges": "11.00"}
    assert balance(simulator) == Decimal("4989.00")
    data = get_call(simulator, call_id)
    assert data["updated_at"] == int(recorded["final_at"])


def test_unanswered_attempts_retry_after_the_account_delays_until_retries_run_out(fast):
    fast.set_scripts(
        {
            CUSTOMER: [
                {"status": 5, "sip_seconds": 12, "ring_seconds": 12},
                {"status": 4, "sip_seconds": 12, "ring_seconds": 12},
                {"status": 6, "sip_seconds": 12, "ring_seconds": 12},
            ]
        }
    )
    call_id = place_call(fast, api_key=FAST_KEY)

    seen = follow(fast, call_id, api_key=FAST_KEY)

    statuses = [(status, retry) for status, _, retry, _ in seen]
    assert statuses == [(8, 0), (1, 0), (5, 0), (8, 1), (1, 1), (4, 1), (8, 2), (1, 2), (6, 2)]
    assert {charges for *_, charges in seen} == {"0.00"}
    attempts = fast.call(call_id)["attempts"]
    # Delays are the account's literal seconds, not divided by the speed.
    assert attempts[1]["start"] - attempts[0]["end"] == pytest.approx(0.4)
    assert attempts[2]["start"] - attempts[1]["end"] == pytest.approx(0.6)
    assert fast.call(call_id)["final"] == {
        "call_status": 6,
        "dtmf": None,
        "retry": 2,
        "call_charges": "0.00",
    }
    assert balance(fast, FAST_KEY) == Decimal("100.00")


def test_a_call_answered_on_its_retry_shows_that_retry_and_pays_only_the_answer(fast):
    fast.set_scripts(
        {CUSTOMER: [{"status": 3}, {"status": 2, "dtmf": 3, "talk_seconds": 61}, {"status": 5}]}
    )
    call_id = place_call(fast, api_key=FAST_KEY)

    seen = follow(fast, call_id, api_key=FAST_KEY)

    assert seen[-1] == (2, 3, 1, "12.00")  # three started pulses of 30 s at 4.00
    assert (3, None, 0, "0.00") in seen
    assert len(fast.call(call_id)["attempts"]) == 2
    assert balance(fast, FAST_KEY) == Decimal("88.00")


def test_a_short_unanswered_script_repeats_its_last_attempt_for_the_remaining_retries(fast):
    fast.set_scripts({CUSTOMER: [{"status": 8}]})
    call_id = place_call(fast, api_key=FAST_KEY)
    attempts = fast.call(call_id)["attempts"]
    assert [attempt["status"] for attempt in attempts] == [8, 8, 8]


def test_unscripted_calls_follow_the_odds(simulator):
    simulator.set_odds(answer=1.0, dtmf={"3": 1})
    answered = [place_call(simulator, caller_id=f"9230000000{n:02d}") for n in range(5)]
    simulator.set_odds(answer=0.0, unanswered={"4": 1})
    unanswered = place_call(simulator, caller_id="923000000099")

    calls = {str(call["call_id"]): call for call in simulator.calls()}
    for call_id in answered:
        assert [(a["status"], a["dtmf"]) for a in calls[call_id]["attempts"]] == [(2, 3)]
    # The session account allows 3 retries: four busy attempts.
    assert [a["status"] for a in calls[unanswered]["attempts"]] == [4, 4, 4, 4]


def test_default_odds_answer_about_sixty_percent_of_first_attempts(simulator):
    for n in range(100):
        place_call(simulator, caller_id=f"923100000{n:03d}")
    first_attempts = [call["attempts"][0] for call in simulator.calls()]
    answered = [attempt for attempt in first_attempts if attempt["status"] == 2]
    assert 45 <= len(answered) <= 75
    assert {attempt["dtmf"] for attempt in answered} <= {1, 2, 3, None}
    assert {a["status"] for a in first_attempts} - {2} <= {1, 3, 4, 5, 6, 8}


def test_the_same_seed_plans_the_same_calls_and_another_seed_does_not():
    def plans(seed: int) -> list:
        with SimulatorProcess.start(speed=60, seed=seed, accounts=["seed-key"]) as sim:
            call_ids = [
                place_call(sim, caller_id=f"92300000000{n}", api_key="seed-key") for n in range(6)
            ]
            calls = {str(call["call_id"]): call for call in sim.calls()}
        return [
            [
                (a["status"], a["dtmf"], a["sip_seconds"], a["ring_seconds"], a["talk_seconds"])
                for a in calls[call_id]["attempts"]
            ]
            for call_id in call_ids
        ]

    first = plans(7)
    assert plans(7) == first
    assert plans(8) != first


# --- faults ---------------------------------------------------------------------------------


def test_get_call_5xx_answers_500_json_or_a_502_503_html_page(simulator):
    call_id = place_call(simulator)
    simulator.set_faults(get_call_5xx=1.0)
    statuses = set()
    for _ in range(12):
        response = api(simulator, "get_call", api_key=TEST_API_KEY, call_id=call_id)
        statuses.add(response.status_code)
        if response.status_code == 500:
            assert response.json() == {"code": "500", "response": "Internal Server Error"}
        else:
            assert response.headers["Content-Type"].startswith("text/html")
    assert statuses <= {500, 502, 503} and len(statuses) > 1
    assert simulator.stats()["faults"] == {"get_call_5xx": 12}


def test_get_call_html_answers_200_with_an_html_error_page(simulator):
    call_id = place_call(simulator)
    simulator.set_faults(get_call_html=1.0)
    response = api(simulator, "get_call", api_key=TEST_API_KEY, call_id=call_id)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    with pytest.raises(ValueError):
        response.json()


def test_get_call_broken_json_answers_200_with_a_truncated_document(simulator):
    call_id = place_call(simulator)
    simulator.set_faults(get_call_broken_json=1.0)
    response = api(simulator, "get_call", api_key=TEST_API_KEY, call_id=call_id)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.text.startswith('{"data": {"call_id"')
    with pytest.raises(ValueError):
        json.loads(response.text)


def test_a_call_lost_after_insert_drops_the_connection_yet_rings_and_finishes(simulator):
    simulator.set_scripts({CUSTOMER: [{"status": 2, "dtmf": 2, "talk_seconds": 20}]})
    simulator.set_faults(calls_lost_after_insert=1.0)
    with pytest.raises(requests.ConnectionError):
        api(simulator, "calls", api_key=TEST_API_KEY, caller_id=CUSTOMER, voice_id="102")

    [call] = simulator.calls()
    assert call["answer_lost"] is True
    simulator.set_faults()
    seen = follow(simulator, str(call["call_id"]))
    assert seen[-1] == (2, 2, 0, "5.50")
    assert simulator.stats()["faults"] == {"calls_lost_after_insert": 1}


def test_a_500_after_insert_still_leaves_the_call_placed(simulator):
    simulator.set_faults(calls_5xx_after_insert=1.0)
    response = api(simulator, "calls", api_key=TEST_API_KEY, caller_id=CUSTOMER, voice_id="102")
    assert response.status_code == 500
    [call] = simulator.calls()
    assert (call["answer_lost"], call["answer_http_status"]) == (False, 500)
    assert simulator.stats()["calls_by_caller"] == {CUSTOMER: 1}


def test_check_balance_5xx_fails_the_balance_request(simulator):
    simulator.set_faults(check_balance_5xx=1.0)
    response = api(simulator, "check_balance", api_key=TEST_API_KEY)
    assert response.status_code in (500, 502, 503)
    assert simulator.stats()["faults"] == {"check_balance_5xx": 1}


@pytest.mark.parametrize(
    "faults",
    [{"slow_rate": 1.0, "slow_seconds": 0.4}, {"latency_ms": 400}],
    ids=["slow", "latency"],
)
def test_slow_answers_and_latency_hold_api_requests(simulator, faults):
    simulator.set_faults(**faults)
    started = time.monotonic()
    response = api(simulator, "user_verify", api_key=TEST_API_KEY)
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.4


def test_a_call_request_that_arrived_before_a_reset_places_nothing_after_it(simulator):
    # One test's slow request must not land in the next test's fresh account (same key).
    simulator.set_faults(slow_rate=1.0, slow_seconds=1.5)
    answer: list[requests.Response] = []
    params = {"api_key": TEST_API_KEY, "caller_id": CUSTOMER, "voice_id": "102"}
    sending = threading.Thread(target=lambda: answer.append(api(simulator, "calls", **params)))
    sending.start()
    wait_for(lambda: simulator.stats()["requests"].get("calls") == 1)
    simulator.reset()
    simulator.add_account(api_key=TEST_API_KEY, username="teststore", balance="5000.00")
    sending.join(10)

    assert answer[0].status_code == 401
    assert simulator.calls() == []
    assert balance(simulator) == Decimal("5000.00")


def test_latency_from_the_command_line_holds_api_requests_until_the_faults_override_it():
    with SimulatorProcess.start(speed=60, latency_ms=300, accounts=["lat-key"]) as sim:
        started = time.monotonic()
        assert api(sim, "user_verify", api_key="lat-key").status_code == 200
        assert time.monotonic() - started >= 0.3
        sim.set_faults(latency_ms=0)
        started = time.monotonic()
        assert api(sim, "user_verify", api_key="lat-key").status_code == 200
        assert time.monotonic() - started < 0.3


def test_command_line_accounts_and_retry_delays_survive_a_reset():
    with SimulatorProcess.start(
        speed=60, accounts=["cli-key:cli:10.00:2.00"], extra_args=["--retry-delays", "0.1,0.2"]
    ) as sim:
        assert sim.output().startswith(f"robocall simulator listening on {sim.base_url}\n")
        sim.add_account(api_key="added-key")
        sim.reset()
        assert api(sim, "user_verify", api_key="added-key").status_code == 401
        assert api(sim, "check_balance", api_key="cli-key").json()["data"] == {
            "balance": "10.00",
            "username": "cli",
            "call_rate": "2.00",
        }
        sim.set_scripts({CUSTOMER: [{"status": 4}]})
        attempts = sim.call(place_call(sim, api_key="cli-key"))["attempts"]
    gaps = [later["start"] - earlier["end"] for earlier, later in itertools.pairwise(attempts)]
    # Three retries by default; the last delay repeats for retries beyond the list.
    assert gaps == pytest.approx([0.1, 0.2, 0.2])


def test_reset_clears_faults_calls_scripts_and_added_accounts(simulator):
    simulator.set_faults(get_call_html=1.0)
    simulator.set_scripts({CUSTOMER: [{"status": 5}]})
    place_call(simulator)
    simulator.reset()
    assert simulator.calls() == []
    assert simulator.stats()["requests"] == {
        "user_verify": 0,
        "check_balance": 0,
        "calls": 0,
        "get_call": 0,
    }
    assert api(simulator, "user_verify", api_key=TEST_API_KEY).status_code == 401


# --- the control API ------------------------------------------------------------------------


def test_stats_count_requests_calls_per_customer_and_order_and_polls_per_call(simulator):
    first = place_call(simulator, text2="ORD-7")
    place_call(simulator, text2="ORD-7")
    place_call(simulator, caller_id="923331112222", text2="ORD-8")
    for _ in range(3):
        get_call(simulator, first)
    api(simulator, "check_balance", api_key=TEST_API_KEY)
    api(simulator, "user_verify", "api/", api_key="wrong")

    stats = simulator.stats()

    assert stats == {
        "requests": {"user_verify": 1, "check_balance": 1, "calls": 3, "get_call": 3},
        "calls_by_caller": {CUSTOMER: 2, "923331112222": 1},
        "calls_by_order": {"ORD-7": 2, "ORD-8": 1},
        "get_call_by_call_id": {first: 3},
        "faults": {},
    }


@pytest.mark.parametrize(
    ("send", "message"),
    [
        (lambda sim: sim.add_account(username="nokey"), "api_key"),
        (lambda sim: sim.add_account(api_key="k", balance="lots"), "balance"),
        (lambda sim: sim.add_account(api_key="k", retry_delays=[-1]), "retry delay"),
        (lambda sim: sim.set_faults(get_call_5xx=1.5), "get_call_5xx"),
        (lambda sim: sim.set_faults(get_call_teapot=0.5), "unknown fault"),
        (lambda sim: sim.set_faults(slow_rate=0.5), "slow_seconds"),
        (lambda sim: sim.set_scripts({"0300": [{"status": 2}]}), "caller_id"),
        (lambda sim: sim.set_scripts({CUSTOMER: [{"status": 7}]}), "status"),
        (lambda sim: sim.set_scripts({CUSTOMER: [{"status": 5, "dtmf": 1}]}), "dtmf"),
        (lambda sim: sim.set_odds(answer=2), "answer"),
        (lambda sim: sim.set_odds(dtmf={"9": 1}), "dtmf"),
    ],
)
def test_the_control_api_refuses_bad_input_with_a_specific_reason(simulator, send, message):
    with pytest.raises(SimulatorError, match=message):
        send(simulator)


def test_a_refused_account_never_echoes_its_key(simulator):
    with pytest.raises(SimulatorError) as refused:
        simulator.add_account(api_key="sk-echo-check-123", balance="lots")
    assert "sk-echo-check-123" not in str(refused.value)


def test_start_reports_the_output_of_a_simulator_that_cannot_start():
    with pytest.raises(SimulatorError, match="--speed"):
        SimulatorProcess.start(speed=0)


# --- secrets --------------------------------------------------------------------------------


def test_the_output_never_contains_an_api_key_even_when_verbose():
    key = "sk-never-print-me-5e6f"
    added_key = "sk-added-later-7a8b"
    with SimulatorProcess.start(
        speed=60, accounts=[f"{key}:shop"], extra_args=["--verbose"]
    ) as sim:
        sim.add_account(api_key=added_key)
        call_id = place_call(sim, api_key=key)
        get_call(sim, call_id, api_key=key)
        api(sim, "check_balance", "api/", api_key=added_key)
        api(sim, "calls", api_key=key, caller_id="bad")
        api(sim, "user_verify", api_key="wrong")
        requests.get(f"{sim.root_url}api/v1/{key}?api_key={key}", timeout=5)
        sim.set_faults(calls_lost_after_insert=1.0)
        with pytest.raises(requests.ConnectionError):
            api(sim, "calls", api_key=key, caller_id=CUSTOMER, voice_id="1")
        # A malformed request line, which the standard library would quote in its error log.
        with socket.create_connection((sim.host, sim.port), timeout=5) as raw:
            raw.sendall(f"GET /api/v1/get_call?api_key={key} HTTP/1.1 junk\r\n\r\n".encode())
            refusal = b""
            while chunk := raw.recv(4096):
                refusal += chunk
            assert b"400" in refusal and key.encode() not in refusal
        api(sim, "user_verify", api_key=key)  # the simulator is still serving

        output = sim.output()

    assert "GET /api/v1/get_call 200" in output
    assert "GET /api/check_balance 200" in output
    assert "GET /api/v1/calls dropped" in output
    assert key not in output
    assert added_key not in output
    assert "api_key" not in output
