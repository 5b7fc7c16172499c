"""The provider balance: remembered on the store, and checked before a launch.

Beat refreshes every store's balance once a minute (`refresh_store_balance`, one task per
store); pages only read the Store's stored value, its age, and whether the last refresh
reached the provider. No web request waits for the provider, so a stalled provider cannot
tie up the web workers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.core.cache import cache
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from calls import formatting
from calls.models import Store
from calls.pipeline.provider import (
    KEY_REJECTED,
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
CENT = Decimal("0.01")


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


BALANCE_REFRESH_SECONDS = 60  # beat asks check_balance once a minute per store


def balance_status_key(store_id: int) -> str:
    return f"robodash:balance-status:{store_id}"


# What the last refresh learnt of a store's provider account, for the pages.
PROVIDER_OK = "ok"
PROVIDER_UNREACHABLE = "unreachable"  # not answering, or an answer that could not be used
PROVIDER_KEY_REJECTED = "rejected"  # it answered, and refused the key ("API Key not matched")


def refresh_store_balance(store_id: int) -> None:
    """Ask for one store's balance and note, for the pages, what the provider said: "ok",
    "rejected" (the key) or "unreachable", forgotten after a few missed refreshes (then the
    page shows the stored value and its age alone)."""
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
    note_provider_state(store_id, status)


def note_provider_state(store_id: int, status: str) -> None:
    """Remember what the provider last said of a store's key (a refresh, a save, a Verify)."""
    cache.set(balance_status_key(store_id), status, BALANCE_REFRESH_SECONDS * 3)


def provider_states(stores: list[Store]) -> dict[int, str]:
    """Each store's provider state as the pages word it: "rejected" when the last refresh
    was refused the key or robodash paused the store for it, else the last refresh's status
    ("ok", "unreachable", or "" when none is recent). One cache round trip for all."""
    statuses = cache.get_many([balance_status_key(store.pk) for store in stores])
    states = {}
    for store in stores:
        state = statuses.get(balance_status_key(store.pk), "")
        if store.paused and in_plain_words(store.paused_reason) == KEY_REJECTED:
            state = PROVIDER_KEY_REJECTED
        states[store.pk] = state
    return states


@dataclass(frozen=True)
class LaunchCheck:
    ok: bool
    message: str
    balance: Decimal | None
    estimated_cost: Decimal | None


def check_launch(store: Store, n_calls: int) -> LaunchCheck:
    """May `store` launch `n_calls` calls? Blocked below the low-balance threshold or the cost."""
    answer = _ask_and_remember(store)
    if isinstance(answer, InvalidApiKey):
        return LaunchCheck(
            ok=False,
            message=_(
                "Cannot launch: the provider rejected this key, %(store)s's API key. "
                "Fix the key in the store's settings, then launch the campaign."
            )
            % {"store": store.name},
            balance=store.balance,
            estimated_cost=None,
        )
    failure = answer if isinstance(answer, ProviderError) else None
    if failure is not None and store.balance is None:
        return LaunchCheck(
            ok=True,
            message=_(
                "Warning: the provider could not be asked for %(store)s's balance (%(reason)s) "
                "and none is known yet; launching without a balance check."
            )
            % {"store": store.name, "reason": in_plain_words(failure).rstrip(".").lower()},
            balance=None,
            estimated_cost=None,
        )

    balance = store.balance
    assert balance is not None  # refreshed, or the last known value
    if failure is not None and store.balance_checked_at is not None:
        checked = timezone.localtime(store.balance_checked_at, store.zone)
        as_of = " " + _("(last known, checked %(when)s; the provider is not answering)") % {
            "when": formatting.when(checked)
        }
    else:
        as_of = ""
    cost = estimate_cost(n_calls, store.call_rate) if store.call_rate is not None else None
    cost_text = (
        _("the estimated cost of %(calls)s is %(cost)s (%(rate)s x %(pulses)s pulses each)")
        % {
            "calls": calls_count(n_calls),
            "cost": formatting.money(cost),
            "rate": formatting.money(store.call_rate or Decimal(0)),
            "pulses": PULSES_PER_VERIFICATION_CALL,
        }
        if cost is not None
        else _("the cost of %(calls)s cannot be estimated (no call rate known)")
        % {"calls": calls_count(n_calls)}
    )

    problems = []
    if balance < store.low_balance_threshold:
        problems.append(
            _("below the store's low-balance threshold of %(threshold)s")
            % {"threshold": formatting.money(store.low_balance_threshold)}
        )
    if cost is not None and balance < cost:
        problems.append(
            _("less than the estimated cost %(cost)s of %(calls)s")
            % {"cost": formatting.money(cost), "calls": calls_count(n_calls)}
        )
    if problems:
        return LaunchCheck(
            ok=False,
            message=_(
                "Cannot launch: %(store)s's balance %(balance)s%(as_of)s is %(problems)s. Top up "
                "the account, then launch the campaign."
            )
            % {
                "store": store.name,
                "balance": formatting.money(balance),
                "as_of": as_of,
                "problems": _(" and ").join(problems),
            },
            balance=balance,
            estimated_cost=cost,
        )
    return LaunchCheck(
        ok=True,
        message=_("Balance %(balance)s%(as_of)s; %(cost)s.")
        % {"balance": formatting.money(balance), "as_of": as_of, "cost": cost_text},
        balance=balance,
        estimated_cost=cost,
    )
