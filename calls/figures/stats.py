"""The figures every page shows, defined once: counts per outcome, the rates and the charges.

Rates (used by the overview, campaign pages, reports and exports):
- answer rate       = answered / final calls, withdrawn ones excluded
                      (answered = confirmed + cancelled + callback requested + no input)
- confirmation rate = decided confirmed / decided or answered
- cancel rate       = decided cancelled / decided or answered
- cost per confirmed order = total charges / decided confirmed

A call's decision is its key press (1 confirmed, 2 cancelled) unless an agent decided its order
by hand after it (`Call.hand_decision`, on the order's latest final call): then the hand
decision stands instead. "Decided or answered" is every answered call plus every unanswered one
(unreachable, no pick-up, review) whose order an agent decided by hand. With no hand decisions
these are exactly confirmed / answered and cancelled / answered.

Every figure is computed in SQL: `figure_aggregates()` are the `Count(..., filter=...)` and `Sum`
expressions, used with `.aggregate()` for one total or `.values(key).annotate()` for one GROUP BY
query per table. Python only adds up the few rows that come back (30 days, a page of campaigns).
A call counts on the day (in the reporting zone) it was created, that is imported or ordered.
Every figure above counts verification calls; notice calls (an order shipped, the shop
cancelled it) are counted apart, `notice_calls` and `notice_charges`.

Returns (docs/deliveries.md) count orders, not calls, on the day the order was created:
- return rate     = returned / (delivered + returned)
- returns avoided = orders cancelled and never shipped x the store's return cost: an upper
                    bound (as if every cancelled order would have come back)
- net saved       = returns avoided - the charges of every call, verification and notice

The pages read `figures_grouped` and `figures_total`, which add up DailyFigures: one row per day,
campaign and voice id, kept exact by PostgreSQL triggers as the calls change
(calls/figures/counters.py, whose SQL mirrors `figure_aggregates`). A page adds up the rows of the
days and campaigns it shows, whatever the number of calls stored.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from django.conf import settings
from django.db import connection
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDate, TruncWeek
from django.utils import timezone

from calls.models import CENT, Call, DailyFigures, Order, Store

Outcome = Call.Outcome
State = Call.State

ANSWERED_OUTCOMES = (
    Outcome.CONFIRMED,
    Outcome.CANCELLED,
    Outcome.CALLBACK_REQUESTED,
    Outcome.NO_INPUT,
)
IN_FLIGHT_STATES = (State.SENDING, State.IN_PROGRESS)
ZERO = Decimal("0.00")
_BY_HAND = ~Q(hand_decision="")
_BY_KEY = Q(hand_decision="")
PERCENT_STEP = Decimal("0.1")


def reporting_zone() -> zoneinfo.ZoneInfo:
    """The zone whose midnights split the days of the overview and the reports."""
    return zoneinfo.ZoneInfo(settings.ROBODASH_DEFAULT_STORE_TIMEZONE)


def rate(part: int, whole: int) -> Decimal | None:
    """`part` of `whole` in percent, one decimal; None when there is nothing to divide by."""
    if not whole:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(PERCENT_STEP, rounding=ROUND_HALF_UP)


def per_unit(total: Decimal, units: int) -> Decimal | None:
    """`total` money spread over `units`, to the paisa; None when there are no units."""
    if not units:
        return None
    return (total / units).quantize(CENT, rounding=ROUND_HALF_UP)


_VERIFY = Q(purpose=Call.Purpose.VERIFY)
_NOTICE = Q(purpose=Call.Purpose.NOTICE)


def figure_aggregates(*, by_purpose: bool = True) -> dict[str, Any]:
    """The SQL aggregates behind the calls' fields of `Figures` (CALL_FIGURE_FIELDS), over
    calls. Every figure but the notice ones counts verification calls only. (by_purpose=False:
    every call, no notice figures, for calls stored before they had a purpose: the tests of
    older migrations.)"""
    verify = _VERIFY if by_purpose else Q()
    aggregates: dict[str, Any] = {
        "calls": Count("id", filter=verify or None),
        "placed": Count("id", filter=verify & Q(sent_at__isnull=False)),
        "queued": Count("id", filter=verify & Q(state=State.QUEUED)),
        "in_flight": Count("id", filter=verify & Q(state__in=IN_FLIGHT_STATES)),
        "finished": Count("id", filter=verify & Q(state=State.FINAL)),
    }
    for outcome in Outcome:
        aggregates[outcome.value] = Count("id", filter=verify & Q(outcome=outcome))
    confirmed, cancelled = Outcome.CONFIRMED, Outcome.CANCELLED
    aggregates |= {
        "decided_confirmed": Count(
            "id",
            filter=verify & (Q(hand_decision=confirmed) | (_BY_KEY & Q(outcome=confirmed))),
        ),
        "decided_cancelled": Count(
            "id",
            filter=verify & (Q(hand_decision=cancelled) | (_BY_KEY & Q(outcome=cancelled))),
        ),
        "decided_by_hand": Count("id", filter=verify & _BY_HAND),
        "decided_unanswered": Count(
            "id", filter=verify & _BY_HAND & ~Q(outcome__in=ANSWERED_OUTCOMES)
        ),
        "charges": Sum("call_charges", filter=verify or None, default=ZERO),
    }
    if by_purpose:
        aggregates["notice_calls"] = Count("id", filter=_NOTICE)
        aggregates["notice_charges"] = Sum("call_charges", filter=_NOTICE, default=ZERO)
    return aggregates


_DELIVERED = Q(delivery=Order.Delivery.DELIVERED)
_RETURNED = Q(delivery=Order.Delivery.RETURNED)
_CONFIRMED = Q(decision=Order.Decision.CONFIRMED)
_UNDECIDED_CALLED = Q(decision="", called=True)
_NOT_CALLED = Q(decision="", called=False)


def order_figure_aggregates() -> dict[str, Any]:
    """The SQL aggregates behind the orders' fields of `Figures` (ORDER_FIGURE_FIELDS), over
    orders (see `Figures` for what each counts)."""
    cancelled_unshipped = Q(decision=Order.Decision.CANCELLED, delivery="")
    return {
        "shipped": Count("id", filter=~Q(delivery="")),
        "delivered": Count("id", filter=_DELIVERED),
        "returned": Count("id", filter=_RETURNED),
        "delivered_confirmed": Count("id", filter=_DELIVERED & _CONFIRMED),
        "returned_confirmed": Count("id", filter=_RETURNED & _CONFIRMED),
        "delivered_undecided": Count("id", filter=_DELIVERED & _UNDECIDED_CALLED),
        "returned_undecided": Count("id", filter=_RETURNED & _UNDECIDED_CALLED),
        "delivered_not_called": Count("id", filter=_DELIVERED & _NOT_CALLED),
        "returned_not_called": Count("id", filter=_RETURNED & _NOT_CALLED),
        "cancelled_unshipped": Count("id", filter=cancelled_unshipped),
        "returns_avoided": Sum("store__return_cost", filter=cancelled_unshipped, default=ZERO),
    }


@dataclass(frozen=True)
class Figures:
    """Counts of one set of calls (a day, a campaign, a voice id, everything) and what follows."""

    calls: int = 0
    placed: int = 0  # accepted by the provider
    queued: int = 0
    in_flight: int = 0  # sending or in progress
    finished: int = 0  # final, whatever the outcome (withdrawn included)
    confirmed: int = 0
    cancelled: int = 0
    callback_requested: int = 0
    no_input: int = 0
    unreachable: int = 0
    failed: int = 0
    needs_review: int = 0
    withdrawn: int = 0
    decided_confirmed: int = 0  # by key press, or by hand when an agent decided after the call
    decided_cancelled: int = 0
    decided_by_hand: int = 0  # calls whose order an agent decided by hand
    decided_unanswered: int = 0  # ... of which the call itself was not answered
    charges: Decimal = ZERO
    # Notice calls (an order shipped, the shop cancelled it): counted apart, in none of the above.
    notice_calls: int = 0
    notice_charges: Decimal = ZERO
    # The orders created that day (not their calls), by what became of the parcel: shipped is
    # every parcel that left (in transit, delivered or returned).
    shipped: int = 0
    delivered: int = 0
    returned: int = 0
    # The same split by the order's decision: confirmed (by key or by hand), undecided though
    # called, never called (undecided, no call placed: skipped, or shipped before its call).
    # A parcel shipped although its order was cancelled is in none of the three.
    delivered_confirmed: int = 0
    returned_confirmed: int = 0
    delivered_undecided: int = 0
    returned_undecided: int = 0
    delivered_not_called: int = 0
    returned_not_called: int = 0
    # Orders cancelled (by key, by hand or by the store's rule) and never shipped; and that
    # times the store's return cost: the returns calling avoided, if each would have come back.
    cancelled_unshipped: int = 0
    returns_avoided: Decimal = ZERO

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Figures:
        values: dict[str, Any] = {
            field.name: row[field.name]
            for field in dataclasses.fields(cls)
            if row.get(field.name) is not None
        }
        for name in MONEY_FIELDS:
            if name in values:
                values[name] = Decimal(values[name]).quantize(CENT)
        return cls(**values)

    def __add__(self, other: Figures) -> Figures:
        return Figures(
            **{
                field.name: getattr(self, field.name) + getattr(other, field.name)
                for field in dataclasses.fields(self)
            }
        )

    @classmethod
    def total(cls, parts: Iterable[Figures]) -> Figures:
        result = cls()
        for part in parts:
            result = result + part
        return result

    @property
    def answered(self) -> int:
        return self.confirmed + self.cancelled + self.callback_requested + self.no_input

    @property
    def rated_finals(self) -> int:
        """The answer rate's denominator: final calls, withdrawn ones excluded."""
        return self.finished - self.withdrawn

    @property
    def answer_rate(self) -> Decimal | None:
        return rate(self.answered, self.rated_finals)

    @property
    def decided_or_answered(self) -> int:
        """The confirmation and cancel rates' denominator (see the module's docstring)."""
        return self.answered + self.decided_unanswered

    @property
    def confirmation_rate(self) -> Decimal | None:
        return rate(self.decided_confirmed, self.decided_or_answered)

    @property
    def cancel_rate(self) -> Decimal | None:
        return rate(self.decided_cancelled, self.decided_or_answered)

    @property
    def cost_per_confirmed(self) -> Decimal | None:
        return per_unit(self.charges, self.decided_confirmed)

    @property
    def all_charges(self) -> Decimal:
        """What every call cost, verification and notice."""
        return self.charges + self.notice_charges

    @property
    def net_saved(self) -> Decimal:
        """The returns avoided less the charges of every call."""
        return self.returns_avoided - self.all_charges

    @property
    def return_rate(self) -> Decimal | None:
        """Returned parcels of those whose end is known (delivered or returned)."""
        return rate(self.returned, self.delivered + self.returned)

    @property
    def in_transit(self) -> int:
        """Parcels shipped whose end (delivered or returned) is not known yet."""
        return self.shipped - self.delivered - self.returned

    @property
    def pending(self) -> int:
        """Calls without a final outcome yet."""
        return self.calls - self.finished

    @property
    def progress_percent(self) -> int:
        """Share of calls that are final, as a whole percent for a progress bar."""
        if not self.calls:
            return 0
        return self.finished * 100 // self.calls

    @property
    def is_moving(self) -> bool:
        """Some call is queued or with the provider: its numbers may still change."""
        return bool(self.queued or self.in_flight)

    def outcome_counts(self) -> list[tuple[str, str, int]]:
        """(outcome, label, count) for every outcome, in the model's order."""
        return [
            (outcome.value, str(outcome.label), getattr(self, outcome.value)) for outcome in Outcome
        ]


FIGURE_FIELDS = [field.name for field in dataclasses.fields(Figures)]  # DailyFigures' columns
MONEY_FIELDS = ("charges", "notice_charges", "returns_avoided")
# Counted from the calls, and from the orders (calls/figures/counters.py).
CALL_FIGURE_FIELDS = FIGURE_FIELDS[: FIGURE_FIELDS.index("shipped")]
ORDER_FIGURE_FIELDS = FIGURE_FIELDS[FIGURE_FIELDS.index("shipped") :]


def figures_of(calls: QuerySet[Call]) -> Figures:
    """One total over `calls`, in one query (the orders' fields zero)."""
    return Figures.from_row(calls.order_by().aggregate(**figure_aggregates()))


def order_figures_of(orders: QuerySet[Order]) -> Figures:
    """The orders' fields over `orders`, in one query (the calls' fields zero)."""
    return Figures.from_row(orders.order_by().aggregate(**order_figure_aggregates()))


def figures_by(calls: QuerySet[Call], key: str) -> dict[Any, Figures]:
    """Figures per value of `key` (a field or an annotation), in one GROUP BY query."""
    rows = calls.order_by().values(key).annotate(**figure_aggregates())
    return {row[key]: Figures.from_row(row) for row in rows}


def local_day_start(day: dt.date, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=zone)


def _created_on(first: dt.date | None, last: dt.date | None, zone: zoneinfo.ZoneInfo) -> Q:
    """Calls created from the start of `first` to the end of `last` in `zone` (None: no bound)."""
    condition = Q()
    if first is not None:
        condition &= Q(created_at__gte=local_day_start(first, zone))
    if last is not None:
        condition &= Q(created_at__lt=local_day_start(last + dt.timedelta(days=1), zone))
    return condition


def created_between(
    calls: QuerySet[Call], first_day: dt.date, last_day: dt.date, zone: zoneinfo.ZoneInfo
) -> QuerySet[Call]:
    """Calls created from the start of `first_day` to the end of `last_day` in `zone`."""
    return calls.filter(_created_on(first_day, last_day, zone))


def daily_figures(
    calls: QuerySet[Call], first_day: dt.date, last_day: dt.date, zone: zoneinfo.ZoneInfo
) -> list[tuple[dt.date, Figures]]:
    """One row per day from `first_day` to `last_day` (empty days included), in one query."""
    by_day = figures_by(
        created_between(calls, first_day, last_day, zone).annotate(
            day=TruncDate("created_at", tzinfo=zone)
        ),
        "day",
    )
    return [(day, by_day.get(day, Figures())) for day in days_from(first_day, last_day)]


def weekly_figures(
    calls: QuerySet[Call], first_day: dt.date, last_day: dt.date, zone: zoneinfo.ZoneInfo
) -> list[tuple[dt.date, Figures]]:
    """One row per week (starting Monday) touching the range, empty weeks included."""
    by_week = figures_by(
        created_between(calls, first_day, last_day, zone).annotate(
            week=TruncWeek("created_at", tzinfo=zone)
        ),
        "week",
    )
    by_monday = _by_monday(by_week, zone)
    return [
        (monday, by_monday.get(monday, Figures())) for monday in mondays_from(first_day, last_day)
    ]


def _by_monday(by_week: Mapping[Any, Figures], zone: zoneinfo.ZoneInfo) -> dict[dt.date, Figures]:
    """TruncWeek's keys (midnight of a Monday in `zone`, or a date) as dates."""
    return {
        (start.astimezone(zone).date() if isinstance(start, dt.datetime) else start): figures
        for start, figures in by_week.items()
    }


def days_from(first_day: dt.date, last_day: dt.date) -> list[dt.date]:
    """Every day from `first_day` to `last_day`, both included."""
    return [first_day + dt.timedelta(days=n) for n in range((last_day - first_day).days + 1)]


def mondays_from(first_day: dt.date, last_day: dt.date) -> list[dt.date]:
    """The Monday of every week touching `first_day` to `last_day`."""
    monday = first_day - dt.timedelta(days=first_day.weekday())
    return days_from(monday, last_day)[::7]


# --- The daily figures added up: what the pages read ----------------------------------------

Grouping = Literal["day", "week", "campaign", "voice", "store"]
_CALL_KEYS = {"campaign": "campaign_id", "voice": "voice_id", "store": "store_id"}


def figures_grouped(
    by: Grouping,
    *,
    first_day: dt.date | None = None,
    last_day: dt.date | None = None,
    store: Store | int | None = None,
    campaigns: Iterable[int] | None = None,
) -> dict[Any, Figures]:
    """Figures per day, week (its Monday), campaign id, voice id or store id, of the calls (and
    orders) created from `first_day` to `last_day` (days in the reporting zone; None: no bound),
    optionally of one store or some campaigns. Groups without calls or counted orders are
    absent.

    One query, of the DailyFigures of the range. The numbers are exactly those of counting the
    calls (tests/calls/test_counters.py).
    """
    return figures_grouped_many(
        (by,), first_day=first_day, last_day=last_day, store=store, campaigns=campaigns
    )[by]


def figures_grouped_many(
    groupings: Sequence[Grouping],
    *,
    first_day: dt.date | None = None,
    last_day: dt.date | None = None,
    store: Store | int | None = None,
    campaigns: Iterable[int] | None = None,
) -> dict[Grouping, dict[Any, Figures]]:
    """`figures_grouped` for several groupings of the same calls (the reports' tables), from
    one read of the daily figures."""
    campaign_ids = list(campaigns) if campaigns is not None else None
    rows = _daily_rows(store, campaign_ids, first_day, last_day)
    if len(groupings) == 1:
        return {groupings[0]: _rolled_up_by(rows, groupings[0])}
    # The store is the campaign's: grouping by it too adds no row.
    grouped = (
        rows.order_by()
        .values("day", "campaign_id", "voice_id", "store_id")
        .annotate(**_daily_sums())
    )
    return _fold(
        (
            (
                (row["day"], row["campaign_id"], row["voice_id"], row["store_id"]),
                _figures_of_sums(row),
            )
            for row in grouped
        ),
        groupings,
    )


def figures_total(
    *,
    first_day: dt.date | None = None,
    last_day: dt.date | None = None,
    store: Store | int | None = None,
    campaigns: Iterable[int] | None = None,
) -> Figures:
    """One total over the same calls as `figures_grouped`, in one query."""
    campaign_ids = list(campaigns) if campaigns is not None else None
    rows = _daily_rows(store, campaign_ids, first_day, last_day)
    return _figures_of_sums(rows.order_by().aggregate(**_daily_sums()))


def counted_zone() -> str:
    """The zone the daily figures are counted in (calls_figures_zone(), which
    calls/figures/counters.py keeps)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT calls_figures_zone()")
        (zone,) = cursor.fetchone()
    return str(zone)


def is_current(zone: zoneinfo.ZoneInfo) -> bool:
    """Whether the daily figures are counted in `zone` (migrate recounts them when the reporting
    zone changed: calls/figures/counters.py)."""
    return counted_zone() == zone.key


def _daily_rows(
    store: Store | int | None,
    campaigns: list[int] | None,
    first_day: dt.date | None,
    last_day: dt.date | None,
) -> QuerySet[DailyFigures]:
    # A group whose calls and orders all went (their campaign deleted): no group.
    rows = DailyFigures.objects.filter(
        Q(calls__gt=0) | Q(notice_calls__gt=0) | Q(shipped__gt=0) | Q(cancelled_unshipped__gt=0)
    )
    if first_day is not None:
        rows = rows.filter(day__gte=first_day)
    if last_day is not None:
        rows = rows.filter(day__lte=last_day)
    if store is not None:
        rows = rows.filter(store=store)
    if campaigns is not None:
        rows = rows.filter(campaign_id__in=campaigns)
    return rows


def _daily_sums() -> dict[str, Any]:
    # Named apart from the columns: Django refuses an annotation named like a field.
    return {f"sum_{name}": Sum(name) for name in FIGURE_FIELDS}


def _figures_of_sums(row: Mapping[str, Any]) -> Figures:
    return Figures.from_row({name: row[f"sum_{name}"] for name in FIGURE_FIELDS})


def _rolled_up_by(rows: QuerySet[DailyFigures], by: Grouping) -> dict[Any, Figures]:
    if by == "week":
        rows = rows.annotate(week=TruncWeek("day"))  # a DateField: the Monday, as a date
    key = _CALL_KEYS.get(by, by)
    grouped = rows.order_by().values(key).annotate(**_daily_sums())
    return {row[key]: _figures_of_sums(row) for row in grouped}


def _fold(
    rows: Iterable[tuple[tuple[Any, ...], Figures]], groupings: Sequence[Grouping]
) -> dict[Grouping, dict[Any, Figures]]:
    """Figures per (day, campaign id, voice id, store id), added up per grouping in Python: a
    few rows (the days shown x their campaigns)."""
    result: dict[Grouping, dict[Any, Figures]] = {by: {} for by in groupings}
    for (day, campaign_id, voice_id, store_id), figures in rows:
        keys = {
            "day": day,
            "week": day - dt.timedelta(days=day.weekday()),
            "campaign": campaign_id,
            "voice": voice_id,
            "store": store_id,
        }
        for by, grouped in result.items():
            key = keys[by]
            grouped[key] = grouped[key] + figures if key in grouped else figures
    return result


def stores_without_return_cost(store: Store | int | None = None) -> list[Store]:
    """The stores (of all, or `store` alone) whose return cost is not set: their cancelled orders
    add nothing to returns_avoided, so the pages say so. A handful of stores: no bound needed."""
    stores = Store.objects.filter(return_cost=0).only("name").order_by("name")
    if store is not None:
        stores = stores.filter(pk=store.pk if isinstance(store, Store) else store)
    return list(stores)


def today_in(zone: zoneinfo.ZoneInfo) -> dt.date:
    return timezone.now().astimezone(zone).date()


def calls_in_flight() -> dict[str, int]:
    """Calls waiting and with the provider right now, over every store (partial indexes)."""
    rows = (
        Call.objects.filter(state__in=(State.QUEUED, *IN_FLIGHT_STATES))
        .order_by()
        .values("state")
        .annotate(n=Count("id"))
    )
    counts = {row["state"]: row["n"] for row in rows}
    return {
        "queued": counts.get(State.QUEUED, 0),
        "sending": counts.get(State.SENDING, 0),
        "in_progress": counts.get(State.IN_PROGRESS, 0),
    }
