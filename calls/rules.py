"""A store's rules, judged at intake: which new orders to call, skip or hold for a person.

A pure function of three values: the order's facts, the store's rules and the phone's history at
this store (calls/intake/judging.py loads the histories of a batch's phones in one query, and
stores the verdicts through calls/transitions.py). Every rule is off while its setting is None.

    rule                      matches when                                           verdict
    blocked                   the phone is on the store's block list                 hold
    returns                   the phone has hold_after_returns returned orders       hold
    below_min / above_max     the amount is outside [call_min_amount, call_max_amount] skip
    trusted                   the phone has trust_after delivered orders, none returned skip

Hold beats skip beats call, and the reasons name every rule that matched, as codes and values
(`{"rule": "below_min", "min": "1000.00"}`): words are made when a page is drawn
(calls/formatting.py verdict_reasons).
"""

from __future__ import annotations

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

    @classmethod
    def of(cls, store: Store) -> StoreRules:
        return cls(
            call_min_amount=store.call_min_amount,
            call_max_amount=store.call_max_amount,
            trust_after=store.trust_after,
            hold_after_returns=store.hold_after_returns,
        )

    @property
    def read_order_history(self) -> bool:
        """Whether any rule reads the phone's past orders (the block list is always read)."""
        return self.trust_after is not None or self.hold_after_returns is not None


@dataclass(frozen=True)
class OrderFacts:
    """What the rules read of a new order."""

    phone: str
    amount: Decimal


@dataclass(frozen=True)
class PhoneHistory:
    """A phone at one store: its orders' parcels delivered and returned, and whether the store
    blocked it (and why)."""

    delivered: int = 0
    returned: int = 0
    blocked: bool = False
    block_reason: str = ""


NO_HISTORY = PhoneHistory()


@dataclass(frozen=True)
class Verdict:
    kind: str  # Order.Verdict
    reasons: list[Reason] = field(default_factory=list)


CALL = Verdict(Order.Verdict.CALL)


def judge(facts: OrderFacts, rules: StoreRules, history: PhoneHistory) -> Verdict:
    """What to do with one new order: hold (for a person), skip (not called) or call."""
    holds: list[Reason] = []
    skips: list[Reason] = []
    if history.blocked:
        holds.append({"rule": "blocked", "reason": history.block_reason})
    if rules.hold_after_returns is not None and history.returned >= rules.hold_after_returns:
        holds.append({"rule": "returns", "returned": history.returned})
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
