"""The provider balance: remembered on the store, and checked before a launch.

Beat refreshes every store's balance once a minute (`refresh_store_balance`, one task per
store); pages only read the Store's stored value, its age, and whether the last refresh
reached the provider. No web request waits for the provider, so a stalled provider cannot
tie up the web workers.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, ClassVar

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from calls import formatting
from calls.models import CENT, Store
from calls.pipeline.provider import (
    AccountBalance,
    InvalidApiKey,
    ProviderError,
    RobocallClient,
    in_plain_words,
)
from calls.redaction import redact

logger = logging.getLogger(__name__)

# `call_rate` is charged per pulse (30 seconds, says the provider's doc). A verification call
# (greeting, store, order, amount, "press 1") rarely passes one minute: two pulses.
PULSES_PER_VERIFICATION_CALL = 2


def calls_count(n: int) -> str:
    return ngettext("%(count)s call", "%(count)s calls", n) % {"count": f"{n:,}"}


def estimate_cost(n_calls: int, call_rate: Decimal) -> Decimal:
    """What `n_calls` verification calls should cost at `call_rate` per pulse."""
    cost = Decimal(n_calls) * call_rate * PULSES_PER_VERIFICATION_CALL
    return cost.quantize(CENT, rounding=ROUND_HALF_UP)


def call_again_question(phone: str, store: Store) -> str:
    """What "Call again" asks before it spends money: the price at the store's last known rate."""
    if store.call_rate is None:
        return _(
            "Call %(phone)s again? The call costs at the store's call rate (not known yet: verify "
            "the store's key in Settings)."
        ) % {"phone": formatting.phone(phone)}
    return _(
        "Call %(phone)s again? The call costs about %(cost)s (%(rate)s a pulse x %(pulses)s "
        "pulses)."
    ) % {
        "phone": formatting.phone(phone),
        "cost": formatting.money(estimate_cost(1, store.call_rate)),
        "rate": formatting.money(store.call_rate),
        "pulses": PULSES_PER_VERIFICATION_CALL,
    }


def _ask_and_remember(store: Store) -> AccountBalance | ProviderError:
    try:
        with RobocallClient.for_store(store) as client:
            answer = client.check_balance()
    except ProviderError as exc:
        logger.warning("check_balance failed for store %s: %s", store.pk, redact(str(exc)))
        return exc
    store.balance = answer.balance
    store.balance_username = answer.username[:100]
    store.call_rate = answer.call_rate
    store.balance_checked_at = timezone.now()
    Store.objects.filter(pk=store.pk).update(
        balance=store.balance,
        balance_username=store.balance_username,
        call_rate=store.call_rate,
        balance_checked_at=store.balance_checked_at,
    )
    return answer


def refresh_balance(store: Store) -> AccountBalance | None:
    """Ask the provider and remember the answer on `store`; None (last values kept) on failure."""
    answer = _ask_and_remember(store)
    return None if isinstance(answer, ProviderError) else answer


class KeyCheck(enum.Enum):
    """What the provider said of a store's API key."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    UNREACHABLE = "unreachable"


@dataclass(frozen=True)
class KeyAnswer:
    verdict: KeyCheck
    balance: AccountBalance | None = None  # the account's, when the key was accepted
    error: ProviderError | None = None  # why it could not be asked, when unreachable


def check_key(api_key: str) -> KeyAnswer:
    """The one check of a store's key, for the store form, its Verify button and add_store:
    check_balance asked with `api_key`. Accepted (with the account's balance), rejected (the
    provider does not match it), or unreachable (any other failure: the key may be fine).
    ValueError when ROBOCALL_BASE_URL is not a usable URL."""
    try:
        with RobocallClient(api_key) as client:
            balance = client.check_balance()
    except InvalidApiKey:
        return KeyAnswer(KeyCheck.REJECTED)
    except ProviderError as exc:
        logger.warning("the API key could not be checked: %s", redact(str(exc)))
        return KeyAnswer(KeyCheck.UNREACHABLE, error=exc)
    return KeyAnswer(KeyCheck.ACCEPTED, balance=balance)


BALANCE_REFRESH_SECONDS = 60  # beat asks check_balance once a minute per store
# A note older than a few missed refreshes says nothing of now: the page shows the stored
# balance and its age alone.
PROVIDER_STATE_FRESH = dt.timedelta(seconds=BALANCE_REFRESH_SECONDS * 3)

# What the last refresh learnt of a store's provider account, for the pages.
PROVIDER_OK = Store.ProviderState.OK
PROVIDER_UNREACHABLE = Store.ProviderState.UNREACHABLE
PROVIDER_KEY_REJECTED = Store.ProviderState.REJECTED


def refresh_store_balance(store_id: int) -> None:
    """Ask for one store's balance and note, for the pages, what the provider said: "ok",
    "rejected" (the key) or "unreachable"."""
    store = Store.objects.filter(pk=store_id).first()
    if store is None:
        return
    answer = _ask_and_remember(store)
    if isinstance(answer, InvalidApiKey):
        status = PROVIDER_KEY_REJECTED
    elif isinstance(answer, ProviderError):
        status = PROVIDER_UNREACHABLE
    else:
        status = PROVIDER_OK
    note_provider_state(store, status)


# What a check of a key leaves for the pages' provider state.
STATE_AFTER_CHECK = {
    KeyCheck.ACCEPTED: PROVIDER_OK,
    KeyCheck.REJECTED: PROVIDER_KEY_REJECTED,
    KeyCheck.UNREACHABLE: PROVIDER_UNREACHABLE,
}


def note_provider_state(store: Store, status: str) -> None:
    """Remember on `store` (the row and the object) what the provider last said of its key: a
    refresh, a save, a Verify."""
    store.provider_state, store.provider_state_at = status, timezone.now()
    Store.objects.filter(pk=store.pk).update(
        provider_state=store.provider_state, provider_state_at=store.provider_state_at
    )


def provider_states(stores: list[Store]) -> dict[int, str]:
    """Each store's provider state as the pages word it: "rejected" when the last refresh
    was refused the key or robodash paused the store for it, else the last refresh's status
    ("ok", "unreachable", or "" when none is recent). Read from the rows already loaded."""
    recent = timezone.now() - PROVIDER_STATE_FRESH
    states = {}
    for store in stores:
        noted_at = store.provider_state_at
        state = store.provider_state if noted_at is not None and noted_at > recent else ""
        if store.paused and store.pause_kind == Store.PauseKind.KEY_REJECTED:
            state = PROVIDER_KEY_REJECTED
        states[store.pk] = state
    return states


@dataclass(frozen=True)
class LaunchCheck:
    """May a store launch `n_calls` calls, as values: `code` says which case, `ok` whether the
    launch goes ahead, `warning` whether it goes ahead on a caveat the person should see.
    `message` words it in the active language when it is shown (launch_check_in_words)."""

    # The provider refused the key: no launch.
    KEY_REJECTED: ClassVar[str] = "key_rejected"
    # The provider did not answer and no balance is known: the launch goes ahead, unchecked.
    UNCHECKED: ClassVar[str] = "unchecked"
    # The balance is below the store's threshold or the estimated cost: no launch.
    BALANCE_SHORT: ClassVar[str] = "balance_short"
    # The balance covers it.
    COVERED: ClassVar[str] = "covered"

    code: str
    store_name: str
    n_calls: int
    balance: Decimal | None
    estimated_cost: Decimal | None
    call_rate: Decimal | None = None
    threshold: Decimal = Decimal(0)
    # When the balance judged is the last known one (the provider is not answering): from when.
    last_known_at: dt.datetime | None = None
    # Why the provider could not be asked (UNCHECKED), worded by
    # calls.pipeline.provider.in_plain_words.
    failure: ProviderError | None = None

    @property
    def ok(self) -> bool:
        return self.code in (self.UNCHECKED, self.COVERED)

    @property
    def warning(self) -> bool:
        return self.code == self.UNCHECKED

    @property
    def below_threshold(self) -> bool:
        return self.balance is not None and self.balance < self.threshold

    @property
    def below_cost(self) -> bool:
        return (
            self.balance is not None
            and self.estimated_cost is not None
            and self.balance < self.estimated_cost
        )

    @property
    def message(self) -> str:
        return launch_check_in_words(self)


def check_launch(store: Store, n_calls: int) -> LaunchCheck:
    """May `store` launch `n_calls` calls? Blocked below the low-balance threshold or the cost."""
    answer = _ask_and_remember(store)
    facts: dict[str, Any] = {"store_name": store.name, "n_calls": n_calls}
    if isinstance(answer, InvalidApiKey):
        return LaunchCheck(
            LaunchCheck.KEY_REJECTED, **facts, balance=store.balance, estimated_cost=None
        )
    failure = answer if isinstance(answer, ProviderError) else None
    if failure is not None and store.balance is None:
        return LaunchCheck(
            LaunchCheck.UNCHECKED, **facts, balance=None, estimated_cost=None, failure=failure
        )
    balance = store.balance
    assert balance is not None  # refreshed, or the last known value
    cost = estimate_cost(n_calls, store.call_rate) if store.call_rate is not None else None
    check = LaunchCheck(
        LaunchCheck.COVERED,
        **facts,
        balance=balance,
        estimated_cost=cost,
        call_rate=store.call_rate,
        threshold=store.low_balance_threshold,
        last_known_at=(
            timezone.localtime(store.balance_checked_at, store.zone)
            if failure is not None and store.balance_checked_at is not None
            else None
        ),
    )
    if check.below_threshold or check.below_cost:
        return replace(check, code=LaunchCheck.BALANCE_SHORT)
    return check


def launch_check_in_words(check: LaunchCheck) -> str:
    """The sentence a person reads for `check`, in the active language."""
    if check.code == LaunchCheck.KEY_REJECTED:
        return _(
            "Cannot launch: the provider rejected this key, %(store)s's API key. "
            "Fix the key in the store's settings, then launch the campaign."
        ) % {"store": check.store_name}
    if check.code == LaunchCheck.UNCHECKED:
        assert check.failure is not None
        return _(
            "Warning: the provider could not be asked for %(store)s's balance (%(reason)s) "
            "and none is known yet; launching without a balance check."
        ) % {
            "store": check.store_name,
            "reason": in_plain_words(check.failure).rstrip(".").lower(),
        }
    assert check.balance is not None
    as_of = (
        " "
        + _("(last known, checked %(when)s; the provider is not answering)")
        % {"when": formatting.when(check.last_known_at)}
        if check.last_known_at is not None
        else ""
    )
    if check.code == LaunchCheck.BALANCE_SHORT:
        problems = []
        if check.below_threshold:
            problems.append(
                _("below the store's low-balance threshold of %(threshold)s")
                % {"threshold": formatting.money(check.threshold)}
            )
        if check.below_cost:
            assert check.estimated_cost is not None
            problems.append(
                _("less than the estimated cost %(cost)s of %(calls)s")
                % {
                    "cost": formatting.money(check.estimated_cost),
                    "calls": calls_count(check.n_calls),
                }
            )
        return _(
            "Cannot launch: %(store)s's balance %(balance)s%(as_of)s is %(problems)s. Top up "
            "the account, then launch the campaign."
        ) % {
            "store": check.store_name,
            "balance": formatting.money(check.balance),
            "as_of": as_of,
            "problems": _(" and ").join(problems),
        }
    cost_text = (
        _("the estimated cost of %(calls)s is %(cost)s (%(rate)s x %(pulses)s pulses each)")
        % {
            "calls": calls_count(check.n_calls),
            "cost": formatting.money(check.estimated_cost),
            "rate": formatting.money(check.call_rate or Decimal(0)),
            "pulses": PULSES_PER_VERIFICATION_CALL,
        }
        if check.estimated_cost is not None
        else _("the cost of %(calls)s cannot be estimated (no call rate known)")
        % {"calls": calls_count(check.n_calls)}
    )
    return _("Balance %(balance)s%(as_of)s; %(cost)s.") % {
        "balance": formatting.money(check.balance),
        "as_of": as_of,
        "cost": cost_text,
    }
