"""A store's rules, judged at intake: which new orders to call, skip or hold for a person.

A pure function of three values: the order's facts, the store's rules and the phone's history at
this store (calls/intake/judging.py loads the histories of a batch's phones in one query, and
stores the verdicts through calls/transitions.py). Every rule is off while its setting is None.

    rule                      matches when                                           verdict
    blocked                   the phone is on the store's block list                 hold
    returns                   the phone has hold_after_returns returned orders       hold
    stale                     placed more than stale_after_hours before it arrived   hold
    below_min / above_max     the amount is outside [call_min_amount, call_max_amount] skip
    trusted                   the phone has trust_after delivered orders, none returned skip

Hold beats skip beats call, and the reasons name every rule that matched, as codes and values
(`{"rule": "below_min", "min": "1000.00"}`): words are made when a page is drawn
(calls/formatting.py verdict_reasons).

Placed is the shop's own created time of the order (None when the shop, the API caller or the
file did not say: never stale); arrived is when robodash received it. A placed time after the
arrival (a shop's clock ahead of ours) is not stale either.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from calls.models import Order, Store

Reason = dict[str, Any]


@dataclass(frozen=True)
class StoreRules:
    """The rules a store has turned on (None: off)."""

    call_min_amount: Decimal | None = None
    call_max_amount: Decimal | None = None
    trust_after: int | None = None
    hold_after_returns: int | None = None
    stale_after_hours: int | None = None

    @classmethod
    def of(cls, store: Store) -> StoreRules:
        return cls(
            call_min_amount=store.call_min_amount,
            call_max_amount=store.call_max_amount,
            trust_after=store.trust_after,
            hold_after_returns=store.hold_after_returns,
            stale_after_hours=store.stale_after_hours,
        )


@dataclass(frozen=True)
class OrderFacts:
    """What the rules read of a new order."""

    phone: str
    amount: Decimal
    placed_at: dt.datetime | None = None  # the shop's created time, if it said
    arrived_at: dt.datetime | None = None  # when robodash received it


@dataclass(frozen=True)
class PhoneHistory:
    """A phone at one store: its orders' parcels delivered and returned, whether the store
    blocked it (and why), and its open order."""

    delivered: int = 0
    returned: int = 0
    blocked: bool = False
    block_reason: str = ""
    # The phone's latest undecided order of the last day (no rule reads it: intake links a new
    # order to it as a possible duplicate).
    open_order: int | None = None


NO_HISTORY = PhoneHistory()


@dataclass(frozen=True)
class Verdict:
    kind: str  # Order.Verdict
    reasons: list[Reason] = field(default_factory=list)


CALL = Verdict(Order.Verdict.CALL)


def _hours_late(facts: OrderFacts) -> dt.timedelta | None:
    """How long after it was placed the order arrived (None: no placed time)."""
    if facts.placed_at is None or facts.arrived_at is None:
        return None
    return facts.arrived_at - facts.placed_at


def judge(facts: OrderFacts, rules: StoreRules, history: PhoneHistory) -> Verdict:
    """What to do with one new order: hold (for a person), skip (not called) or call."""
    holds: list[Reason] = []
    skips: list[Reason] = []
    if history.blocked:
        holds.append({"rule": "blocked", "reason": history.block_reason})
    if rules.hold_after_returns is not None and history.returned >= rules.hold_after_returns:
        holds.append({"rule": "returns", "returned": history.returned})
    late = _hours_late(facts)
    stale_after = rules.stale_after_hours
    if stale_after is not None and late is not None and late > dt.timedelta(hours=stale_after):
        holds.append({"rule": "stale", "hours": int(late.total_seconds() // 3600)})
    if rules.call_min_amount is not None and facts.amount < rules.call_min_amount:
        skips.append({"rule": "below_min", "min": str(rules.call_min_amount)})
    if rules.call_max_amount is not None and facts.amount > rules.call_max_amount:
        skips.append({"rule": "above_max", "max": str(rules.call_max_amount)})
    if (
        rules.trust_after is not None
        and history.delivered >= rules.trust_after
        and history.returned == 0
    ):
        skips.append({"rule": "trusted", "delivered": history.delivered})
    if holds:
        return Verdict(Order.Verdict.HOLD, holds + skips)
    if skips:
        return Verdict(Order.Verdict.SKIP, skips)
    return CALL
