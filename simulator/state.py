"""What the simulated provider knows: accounts, call plans, faults, odds and counters.

Everything lives behind one lock. A call's whole future (its attempts and their timings) is
decided when it is inserted, so reading its status is a pure function of the clock: no
background thread moves calls along, and a given (seed, call_id) always plays out the same way.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

ANSWERED = 2
CALL_STATUSES = (1, 2, 3, 4, 5, 6, 8)
# Unanswered results the provider retries for free: congestion, busy, no answer, hangup, plus a
# call left ringing (1) or one that never left SIP (8).
UNANSWERED_STATUSES = (1, 3, 4, 5, 6, 8)
DTMF_CHOICES = ("1", "2", "3", "null")

ZERO = Decimal("0.00")
TWO_PLACES = Decimal("0.01")
PULSE_SECONDS = 30  # call_rate is charged per started 30 s of talk

# Unscaled durations, in seconds; divided by --speed at run time.
SIP_SECONDS = (2.0, 8.0)
RING_SECONDS = (5.0, 40.0)
TALK_SECONDS = (15, 90)

# Call ids start high and never restart, not even on reset: a client that still polls a call
# from before a reset must get "not found", never somebody else's newer call.
FIRST_CALL_ID = 20001

DEFAULT_RETRIES = 3
DEFAULT_RETRY_DELAYS = (300.0, 600.0, 1800.0)  # the portal's Call Settings default: 5, 10, 30 min

RATE_FAULTS = (
    "get_call_5xx",
    "get_call_html",
    "get_call_broken_json",
    "calls_lost_after_insert",
    "calls_5xx_after_insert",
    "check_balance_5xx",
    "slow_rate",
)
AMOUNT_FAULTS = ("slow_seconds", "latency_ms")

CALLER_ID_RE = re.compile(r"92[0-9]{10}")


class InvalidInput(ValueError):
    """Control input the simulator refuses. The message is shown to the caller and never holds
    an API key."""


# --- configuration values -------------------------------------------------------------------


def parse_money(value: object, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise InvalidInput(f"{what} must be a number like 2682.00")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise InvalidInput(f"{what} must be a number like 2682.00") from None
    if not amount.is_finite() or amount < 0:
        raise InvalidInput(f"{what} must be zero or more")
    return amount.quantize(TWO_PLACES)


def parse_seconds(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{what} must be a number of seconds")
    seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0:
        raise InvalidInput(f"{what} must be zero or more seconds")
    return seconds


def parse_retry_delays(value: object) -> tuple[float, ...]:
    if isinstance(value, str):
        items: list[object] = []
        for part in value.split(","):
            try:
                items.append(float(part))
            except ValueError:
                raise InvalidInput(
                    "retry_delays must be comma-separated seconds, like 300,600,1800"
                ) from None
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise InvalidInput("retry_delays must be a list of seconds")
    if not items:
        raise InvalidInput("retry_delays needs at least one delay")
    return tuple(parse_seconds(item, "each retry delay") for item in items)


@dataclass(frozen=True)
class Account:
    api_key: str
    username: str
    balance: Decimal  # the opening balance; answered calls are deducted as they become visible
    call_rate: Decimal
    retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS
    retries: int = DEFAULT_RETRIES

    def retry_delay(self, retries_done: int) -> float:
        """Literal seconds between attempt `retries_done` (0 = the first) and the next one."""
        return self.retry_delays[min(retries_done, len(self.retry_delays) - 1)]


def account_from_mapping(data: Mapping[str, Any], default_delays: tuple[float, ...]) -> Account:
    unknown = sorted(
        set(data) - {"api_key", "username", "balance", "call_rate", "retry_delays", "retries"}
    )
    if unknown:
        raise InvalidInput(f"unknown account fields: {', '.join(unknown)}")
    api_key = data.get("api_key")
    if not isinstance(api_key, str) or not api_key.strip():
        raise InvalidInput("api_key must be a non-empty string")
    username = data.get("username", "demo")
    if not isinstance(username, str) or not username.strip():
        raise InvalidInput("username must be a non-empty string")
    retries = data.get("retries", DEFAULT_RETRIES)
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 10:
        raise InvalidInput("retries must be a whole number from 0 to 10")
    delays = data.get("retry_delays")
    return Account(
        api_key=api_key,
        username=username,
        balance=parse_money(data.get("balance", "2682.00"), "balance"),
        call_rate=parse_money(data.get("call_rate", "5.50"), "call_rate"),
        retry_delays=default_delays if delays is None else parse_retry_delays(delays),
        retries=retries,
    )


def account_from_spec(spec: str, default_delays: tuple[float, ...]) -> Account:
    """Parse the command line's KEY[:USERNAME[:BALANCE[:RATE]]]."""
    parts = spec.split(":")
    if len(parts) > 4:
        raise InvalidInput("--account takes KEY[:USERNAME[:BALANCE[:RATE]]]")
    fields: dict[str, Any] = dict(
        zip(("api_key", "username", "balance", "call_rate"), parts, strict=False)
    )
    return account_from_mapping(fields, default_delays)


@dataclass(frozen=True)
class Odds:
    answer: float = 0.6
    dtmf: Mapping[str, float] = field(
        default_factory=lambda: {"1": 0.6, "2": 0.15, "3": 0.10, "null": 0.15}
    )
    unanswered: Mapping[str, float] = field(
        default_factory=lambda: {"5": 0.4, "4": 0.2, "3": 0.1, "6": 0.1, "1": 0.1, "8": 0.1}
    )


def _weights(value: object, allowed: Sequence[str], what: str) -> dict[str, float]:
    if not isinstance(value, Mapping) or not value:
        raise InvalidInput(f"{what} must be an object like {{{allowed[0]!r}: 0.5, ...}}")
    weights: dict[str, float] = {}
    for key, weight in value.items():
        if str(key) not in allowed:
            raise InvalidInput(f"{what} keys must be among {', '.join(allowed)}, not {key!r}")
        if isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0:
            raise InvalidInput(f"{what}[{key!r}] must be a number zero or more")
        weights[str(key)] = float(weight)
    if sum(weights.values()) <= 0:
        raise InvalidInput(f"{what} needs at least one weight above zero")
    return weights


def odds_from_mapping(data: Mapping[str, Any]) -> Odds:
    unknown = sorted(set(data) - {"answer", "dtmf", "unanswered"})
    if unknown:
        raise InvalidInput(f"unknown odds fields: {', '.join(unknown)}")
    defaults = Odds()
    answer = data.get("answer", defaults.answer)
    if isinstance(answer, bool) or not isinstance(answer, int | float) or not 0 <= answer <= 1:
        raise InvalidInput("answer must be a probability from 0 to 1")
    return Odds(
        answer=float(answer),
        dtmf=_weights(data["dtmf"], DTMF_CHOICES, "dtmf") if "dtmf" in data else defaults.dtmf,
        unanswered=(
            _weights(data["unanswered"], [str(s) for s in UNANSWERED_STATUSES], "unanswered")
            if "unanswered" in data
            else defaults.unanswered
        ),
    )


def faults_from_mapping(data: Mapping[str, Any]) -> dict[str, float]:
    faults: dict[str, float] = {}
    for name, value in data.items():
        if name in RATE_FAULTS:
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise InvalidInput(f"fault {name} must be a rate from 0 to 1")
        elif name in AMOUNT_FAULTS:
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise InvalidInput(f"{name} must be a number zero or more")
        else:
            known = ", ".join(RATE_FAULTS + AMOUNT_FAULTS)
            raise InvalidInput(f"unknown fault {name!r}; known: {known}")
        faults[name] = float(value)
    if faults.get("slow_rate") and "slow_seconds" not in faults:
        raise InvalidInput("slow_rate needs slow_seconds: how long a slow answer takes")
    return faults


@dataclass(frozen=True)
class ScriptedAttempt:
    status: int
    dtmf: int | None = None
    sip_seconds: float | None = None
    ring_seconds: float | None = None
    talk_seconds: float | None = None


def scripts_from_mapping(data: Mapping[str, Any]) -> dict[str, tuple[ScriptedAttempt, ...]]:
    scripts: dict[str, tuple[ScriptedAttempt, ...]] = {}
    for caller_id, attempts in data.items():
        if not CALLER_ID_RE.fullmatch(caller_id):
            raise InvalidInput(f"script key {caller_id!r} must be a caller_id like 923001234567")
        if not isinstance(attempts, list):
            raise InvalidInput(f"script for {caller_id} must be a list of attempts")
        parsed = []
        for number, attempt in enumerate(attempts, start=1):
            where = f"script for {caller_id}, attempt {number}"
            if not isinstance(attempt, Mapping):
                raise InvalidInput(f"{where} must be an object")
            unknown = sorted(
                set(attempt) - {"status", "dtmf", "sip_seconds", "ring_seconds", "talk_seconds"}
            )
            if unknown:
                raise InvalidInput(f"{where} has unknown fields: {', '.join(unknown)}")
            status = attempt.get("status")
            if status not in CALL_STATUSES or isinstance(status, bool):
                raise InvalidInput(f"{where}: status must be one of {CALL_STATUSES}")
            dtmf = attempt.get("dtmf")
            if dtmf is not None and (status != ANSWERED or dtmf not in (1, 2, 3)):
                raise InvalidInput(f"{where}: dtmf must be 1, 2, 3 or null, and only for status 2")
            durations = {
                name: (
                    None
                    if attempt.get(name) is None
                    else parse_seconds(attempt[name], f"{where}: {name}")
                )
                for name in ("sip_seconds", "ring_seconds", "talk_seconds")
            }
            if durations["talk_seconds"] == 0 and status == ANSWERED:
                raise InvalidInput(f"{where}: an answered call talks for more than 0 seconds")
            parsed.append(ScriptedAttempt(status=status, dtmf=dtmf, **durations))
        scripts[caller_id] = tuple(parsed)
    return scripts


# --- calls and their plans ------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    status: int  # the attempt's result
    dtmf: int | None
    start: float  # epoch seconds: status 8 becomes visible, retry counts this attempt
    left_sip_at: float  # status 1 becomes visible (never, for a call stuck at 8)
    end: float  # the result becomes visible (for an answer: the end of the talk)
    sip_seconds: float  # unscaled
    ring_seconds: float  # unscaled
    talk_seconds: float  # unscaled; 0 unless answered

    def visible_at(self, now: float) -> tuple[int, int | None, float]:
        """(call_status, dtmf, when that status appeared) as get_call shows it at `now`."""
        if self.status == 8 or now < self.left_sip_at:
            return 8, None, self.start
        if now < self.end or self.status == 1:
            return 1, None, self.left_sip_at
        return self.status, self.dtmf, self.end


@dataclass(frozen=True)
class Snapshot:
    call_status: int
    dtmf: int | None
    retry: int
    call_charges: Decimal
    updated_at: float
    final: bool


@dataclass
class Call:
    call_id: int
    api_key: str
    username: str
    caller_id: str
    amount: str | None
    voice_id: str
    texts: dict[str, str | None]  # text1..text5
    keys: dict[str, str | None]  # key1..key5
    inserted_at: float
    attempts: tuple[Attempt, ...]
    answer_charges: Decimal  # what the answer costs once visible; 0.00 when never answered
    scripted: bool
    answer_lost: bool = False  # the insert's HTTP answer was dropped (a fault)
    answer_http_status: int | None = 200

    @property
    def final_at(self) -> float:
        return self.attempts[-1].end

    def snapshot(self, now: float) -> Snapshot:
        retry = 0
        for index, attempt in enumerate(self.attempts):
            if attempt.start <= now:
                retry = index
        attempt = self.attempts[retry]
        status, dtmf, changed_at = attempt.visible_at(now)
        return Snapshot(
            call_status=status,
            dtmf=dtmf,
            retry=retry,
            call_charges=self.answer_charges if status == ANSWERED else ZERO,
            updated_at=changed_at,
            final=retry == len(self.attempts) - 1 and now >= attempt.end,
        )


def _pick(rng: random.Random, weights: Mapping[str, float]) -> str:
    # Sorted, so the draw depends only on the weights, not on the order they were sent in.
    choices = sorted(weights.items())
    point = rng.random() * sum(weight for _, weight in choices)
    for choice, weight in choices:
        point -= weight
        if point < 0:
            return choice
    return next(choice for choice, weight in reversed(choices) if weight > 0)


def plan_attempts(
    rng: random.Random,
    *,
    start: float,
    speed: float,
    account: Account,
    odds: Odds,
    script: Sequence[ScriptedAttempt] | None,
) -> tuple[Attempt, ...]:
    """Every attempt of one call, from its insert to its final status.

    A script shorter than the retries repeats its last attempt, so a one-line unanswered script
    still runs the account's retries to exhaustion. Each attempt draws the same random numbers
    whether or not a script overrides them, which keeps plans stable when odds change.
    """
    attempts: list[Attempt] = []
    for retry in range(account.retries + 1):
        sip = rng.uniform(*SIP_SECONDS)
        ring = rng.uniform(*RING_SECONDS)
        talk: float = rng.randint(*TALK_SECONDS)
        answered = rng.random() < odds.answer
        dtmf_choice = _pick(rng, odds.dtmf)
        unanswered_choice = _pick(rng, odds.unanswered)
        if script:
            entry = script[min(retry, len(script) - 1)]
            status, dtmf = entry.status, entry.dtmf
            sip = sip if entry.sip_seconds is None else entry.sip_seconds
            ring = ring if entry.ring_seconds is None else entry.ring_seconds
            talk = talk if entry.talk_seconds is None else entry.talk_seconds
        elif answered:
            status, dtmf = ANSWERED, None if dtmf_choice == "null" else int(dtmf_choice)
        else:
            status, dtmf = int(unanswered_choice), None
        if status != ANSWERED:
            talk = 0
        left_sip_at = start + sip / speed
        # A call stuck at 8 sits there for as long as it would have taken to ring out.
        end = left_sip_at + (ring + talk) / speed
        attempts.append(
            Attempt(status, dtmf, start, left_sip_at, end, round(sip, 3), round(ring, 3), talk)
        )
        if status == ANSWERED:
            break
        start = end + account.retry_delay(retry)
    return tuple(attempts)


def answer_charges(attempts: Sequence[Attempt], call_rate: Decimal) -> Decimal:
    last = attempts[-1]
    if last.status != ANSWERED:
        return ZERO
    pulses = math.ceil(last.talk_seconds / PULSE_SECONDS)
    return (call_rate * pulses).quantize(TWO_PLACES)


@dataclass
class Ledger:
    """One account's spending: charges move from pending to settled as answers become visible."""

    settled: Decimal = ZERO
    pending: list[tuple[float, int, Decimal]] = field(default_factory=list)  # a heap

    def add(self, visible_at: float, call_id: int, charges: Decimal) -> None:
        heapq.heappush(self.pending, (visible_at, call_id, charges))

    def spent_by(self, now: float) -> Decimal:
        while self.pending and self.pending[0][0] <= now:
            self.settled += heapq.heappop(self.pending)[2]
        return self.settled


@dataclass
class Stats:
    requests: Counter[str] = field(
        default_factory=lambda: Counter(
            {"user_verify": 0, "check_balance": 0, "calls": 0, "get_call": 0}
        )
    )
    calls_by_caller: Counter[str] = field(default_factory=Counter)
    calls_by_order: Counter[str] = field(default_factory=Counter)
    get_call_by_call_id: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)


class InsufficientBalance(Exception):
    pass


class StaleRequest(Exception):
    """The request arrived before a reset: its account and its world are gone."""


@dataclass(frozen=True)
class NewCall:
    caller_id: str
    voice_id: str
    amount: str | None
    texts: dict[str, str | None]
    keys: dict[str, str | None]


class SimulatorState:
    def __init__(
        self,
        *,
        seed: int = 0,
        speed: float = 1.0,
        accounts: Sequence[Account] = (),
        default_retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS,
        latency_ms: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if speed <= 0:
            raise InvalidInput("speed must be above zero")
        self.seed = seed
        self.speed = speed
        self.default_retry_delays = default_retry_delays
        self.base_latency_ms = latency_ms
        self.clock = clock
        self._lock = threading.Lock()
        self._command_line_accounts = {account.api_key: account for account in accounts}
        self._call_ids = itertools.count(FIRST_CALL_ID)
        self._generation = 0
        self._reset()

    def _reset(self) -> None:
        self._accounts = dict(self._command_line_accounts)
        self._ledgers: dict[str, Ledger] = {}
        self._calls: dict[int, Call] = {}
        self._faults: dict[str, float] = {}
        self._fault_rng = random.Random(f"faults:{self.seed}")
        self._scripts: dict[str, tuple[ScriptedAttempt, ...]] = {}
        self._odds = Odds()
        self._stats = Stats()

    # --- the provider's side ---

    def count_request(self, endpoint: str) -> None:
        with self._lock:
            self._stats.requests[endpoint] += 1

    def count_get_call(self, call_id: str) -> None:
        with self._lock:
            self._stats.get_call_by_call_id[call_id] += 1

    def account(self, api_key: str | None) -> Account | None:
        if not api_key:
            return None
        with self._lock:
            return self._accounts.get(api_key)

    def balance(self, account: Account) -> Decimal:
        with self._lock:
            return self._balance(account, self.clock())

    def _balance(self, account: Account, now: float) -> Decimal:
        ledger = self._ledgers.get(account.api_key)
        spent = ledger.spent_by(now) if ledger else ZERO
        return account.balance - spent

    def fault(self, name: str) -> bool:
        """Draw one fault for this request; counted when it fires."""
        with self._lock:
            rate = self._faults.get(name, 0.0)
            if rate <= 0 or self._fault_rng.random() >= rate:
                return False
            self._stats.faults[name] += 1
            return True

    def choose(self, options: Sequence[str]) -> str:
        with self._lock:
            return self._fault_rng.choice(options)

    def request_delay(self) -> float:
        """Seconds to hold this API request: the latency plus, if drawn, a slow answer."""
        slow = self.fault("slow_rate")
        with self._lock:
            latency_ms = self._faults.get("latency_ms", self.base_latency_ms)
            slow_seconds = self._faults.get("slow_seconds", 0.0) if slow else 0.0
        return latency_ms / 1000 + slow_seconds

    @property
    def generation(self) -> int:
        """How many resets there have been. A request notes it when it arrives."""
        with self._lock:
            return self._generation

    def insert_call(self, account: Account, new: NewCall, generation: int | None = None) -> Call:
        """Insert a call for `account`. A request that arrived before a reset (`generation` is
        an older one) inserts nothing: a slow request from one test never lands in the next."""
        with self._lock:
            if generation is not None and generation != self._generation:
                raise StaleRequest
            now = self.clock()
            if self._balance(account, now) < account.call_rate:
                raise InsufficientBalance
            call_id = next(self._call_ids)
            script = self._scripts.get(new.caller_id)
            attempts = plan_attempts(
                random.Random(f"{self.seed}:{call_id}"),
                start=now,
                speed=self.speed,
                account=account,
                odds=self._odds,
                script=script,
            )
            call = Call(
                call_id=call_id,
                api_key=account.api_key,
                username=account.username,
                caller_id=new.caller_id,
                amount=new.amount,
                voice_id=new.voice_id,
                texts=dict(new.texts),
                keys=dict(new.keys),
                inserted_at=now,
                attempts=attempts,
                answer_charges=answer_charges(attempts, account.call_rate),
                scripted=script is not None,
            )
            self._calls[call_id] = call
            if call.answer_charges:
                self._ledgers.setdefault(account.api_key, Ledger()).add(
                    call.final_at, call_id, call.answer_charges
                )
            self._stats.calls_by_caller[new.caller_id] += 1
            if new.texts.get("text2"):
                self._stats.calls_by_order[str(new.texts["text2"])] += 1
            return call

    def mark_answer(self, call_id: int, http_status: int | None) -> None:
        """Record how the insert was answered: None when the connection was dropped."""
        with self._lock:
            call = self._calls[call_id]
            call.answer_lost = http_status is None
            call.answer_http_status = http_status

    def call_for(self, api_key: str, call_id: int) -> tuple[Call, Snapshot] | None:
        with self._lock:
            call = self._calls.get(call_id)
            # Another account's call is "not found", as if it did not exist.
            if call is None or call.api_key != api_key:
                return None
            return call, call.snapshot(self.clock())

    # --- the test-control side ---

    def reset(self) -> None:
        with self._lock:
            self._generation += 1
            self._reset()

    def add_account(self, data: Mapping[str, Any]) -> Account:
        account = account_from_mapping(data, self.default_retry_delays)
        with self._lock:
            self._accounts[account.api_key] = account
        return account

    def set_faults(self, data: Mapping[str, Any]) -> dict[str, float]:
        faults = faults_from_mapping(data)
        with self._lock:
            self._faults = faults
        return faults

    def set_scripts(self, data: Mapping[str, Any]) -> list[str]:
        """Add or replace scripts per caller_id; an empty list removes that caller's script."""
        scripts = scripts_from_mapping(data)
        with self._lock:
            for caller_id, attempts in scripts.items():
                if attempts:
                    self._scripts[caller_id] = attempts
                else:
                    self._scripts.pop(caller_id, None)
            return sorted(self._scripts)

    def set_odds(self, data: Mapping[str, Any]) -> Odds:
        odds = odds_from_mapping(data)
        with self._lock:
            self._odds = odds
        return odds

    def health(self) -> dict[str, Any]:
        with self._lock:
            return {
                "status": "ok",
                "speed": self.speed,
                "seed": self.seed,
                "calls": len(self._calls),
                "accounts": len(self._accounts),
            }

    def calls_report(self) -> list[dict[str, Any]]:
        with self._lock:
            now = self.clock()
            return [_call_report(call, now) for call in self._calls.values()]

    def stats_report(self) -> dict[str, Any]:
        with self._lock:
            stats = self._stats
            return {
                "requests": dict(stats.requests),
                "calls_by_caller": dict(stats.calls_by_caller),
                "calls_by_order": dict(stats.calls_by_order),
                "get_call_by_call_id": dict(stats.get_call_by_call_id),
                "faults": dict(stats.faults),
            }


def _call_report(call: Call, now: float) -> dict[str, Any]:
    last = call.attempts[-1]
    current = call.snapshot(now)
    return {
        "call_id": call.call_id,
        "username": call.username,
        "caller_id": call.caller_id,
        "amount": call.amount,
        "voice_id": call.voice_id,
        **call.texts,
        **call.keys,
        "inserted_at": call.inserted_at,
        "answer_lost": call.answer_lost,
        "answer_http_status": call.answer_http_status,
        "scripted": call.scripted,
        "attempts": [
            {
                "status": attempt.status,
                "dtmf": attempt.dtmf,
                "start": attempt.start,
                "left_sip_at": attempt.left_sip_at,
                "end": attempt.end,
                "sip_seconds": attempt.sip_seconds,
                "ring_seconds": attempt.ring_seconds,
                "talk_seconds": attempt.talk_seconds,
            }
            for attempt in call.attempts
        ],
        "final": {
            "call_status": last.status,
            "dtmf": last.dtmf,
            "retry": len(call.attempts) - 1,
            "call_charges": str(call.answer_charges),
        },
        "final_at": call.final_at,
        "current": {
            "call_status": current.call_status,
            "dtmf": current.dtmf,
            "retry": current.retry,
            "call_charges": str(current.call_charges),
            "final": current.final,
        },
    }
