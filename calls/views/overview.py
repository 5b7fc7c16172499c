"""The overview: each store's balance, the figures of today, 7 and 30 days, whether the last 30
days' calls paid (returns avoided, the money saved after the calls' charges, the parcels and
their return rate), a 30-day chart.

Neither the page nor its `#balances` fragment (reloaded by htmx every minute) waits for the
provider: beat refreshes the balances (calls.pipeline.balances), and they show the value last stored
on each Store with its age. A provider that is down or stalled costs the page nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from calls.figures import stats
from calls.figures.stats import Figures
from calls.models import Call, Order, Store
from calls.permissions import CALL_ACTIONS, EVERYONE, REPORTS, role_required, user_can
from calls.pipeline.balances import provider_states
from calls.views import HtmxHttpRequest

CHART_DAYS = 30
PERIODS = ((_("Today"), 1), (_("Last 7 days"), 7), (_("Last 30 days"), 30))


@dataclass(frozen=True)
class StoreBalance:
    store: Store
    # "ok": the last refresh (within a few minutes) reached the provider; "unreachable": it
    # did not; "rejected": the provider refused the store's key; "": no recent refresh (the
    # page shows the stored value and its age). calls.pipeline.balances.provider_states.
    status: str

    @property
    def is_low(self) -> bool:
        balance = self.store.balance
        return balance is not None and balance < self.store.low_balance_threshold


def store_balances() -> list[StoreBalance]:
    """Every store with its last stored balance and the outcome of the last refresh."""
    # Bounded: a merchant runs a handful of stores, not thousands.
    stores = list(Store.objects.order_by("name"))
    states = provider_states(stores)
    return [StoreBalance(store=store, status=states[store.pk]) for store in stores]


@dataclass(frozen=True)
class Period:
    """One column of the figures table, with the lists behind its figures."""

    label: str
    figures: Figures
    first: dt.date
    last: dt.date

    def calls_url(self, **filters: str) -> str:
        """The Calls list of this period's days, narrowed by `filters` (outcome=...)."""
        query = QueryDict(mutable=True)
        query.update(filters)
        query["date_from"] = self.first.isoformat()
        query["date_to"] = self.last.isoformat()
        return f"{reverse('call_list')}?{query.urlencode()}"

    @property
    def all_calls_url(self) -> str:
        return self.calls_url()

    @property
    def confirmed_url(self) -> str:
        return self.calls_url(outcome=Call.Outcome.CONFIRMED)

    @property
    def cancelled_url(self) -> str:
        return self.calls_url(outcome=Call.Outcome.CANCELLED)

    @property
    def callbacks_url(self) -> str:
        return self.calls_url(outcome=Call.Outcome.CALLBACK_REQUESTED)


@dataclass(frozen=True)
class Returns:
    """Whether the last 30 days' calls paid, for the overview's sentence: its figures, and which
    way to word them (`kind`)."""

    figures: Figures
    # "none": nothing shipped nor cancelled before shipping yet; "no_cost": no store has a return
    # cost, so no money can be said; "saved" or "lost": the net saved is >= 0 or below it.
    kind: str
    without_cost: list[Store]  # stores whose cancelled orders count nothing (no return cost)

    @classmethod
    def of(cls, figures: Figures, stores: list[Store]) -> Returns:
        without_cost = [store for store in stores if not store.return_cost]
        if not figures.shipped and not figures.cancelled_unshipped:
            kind = "none"
        elif stores and len(without_cost) == len(stores):
            kind = "no_cost"
        else:
            kind = "saved" if figures.net_saved >= 0 else "lost"
        return cls(figures, kind, without_cost)

    @property
    def overspent(self) -> Decimal:
        """How much more the calls cost than the returns they avoided (kind "lost")."""
        return -self.figures.net_saved


@dataclass(frozen=True)
class Segment:
    key: str
    label: str
    count: int
    y: float
    height: float


@dataclass(frozen=True)
class Bar:
    day: dt.date
    x: float
    figures: Figures
    segments: list[Segment]


# Bottom to top; the colours live in robodash.css, one class per key (.s-confirmed, ...).
CHART_SERIES = (
    (Call.Outcome.CONFIRMED.value, _("Confirmed")),
    (Call.Outcome.CANCELLED.value, _("Cancelled")),
    (Call.Outcome.CALLBACK_REQUESTED.value, _("Callback")),
    (Call.Outcome.NO_INPUT.value, _("No input")),
    (Call.Outcome.UNREACHABLE.value, _("Unreachable")),
    (Call.Outcome.FAILED.value, _("Failed")),
    (Call.Outcome.NEEDS_REVIEW.value, _("Needs review")),
    (Call.Outcome.WITHDRAWN.value, _("Withdrawn")),
    ("pending", _("Not final yet")),
)
CHART_HEIGHT = 160.0
BAR_STEP = 24.0
BAR_WIDTH = 18.0


def stacked_bars(days: list[tuple[dt.date, Figures]]) -> dict[str, object]:
    """Geometry of a stacked bar chart of outcomes per day, drawn as inline SVG by the template."""
    tallest = max((figures.calls for _day, figures in days), default=0) or 1
    bars = []
    for index, (day, figures) in enumerate(days):
        top = CHART_HEIGHT
        segments = []
        for key, label in CHART_SERIES:
            count = figures.pending if key == "pending" else getattr(figures, key)
            if not count:
                continue
            height = CHART_HEIGHT * count / tallest
            top -= height
            segments.append(Segment(key, str(label), count, round(top, 2), round(height, 2)))
        bars.append(Bar(day=day, x=index * BAR_STEP, figures=figures, segments=segments))
    return {
        "bars": bars,
        "tallest": tallest if any(f.calls for _day, f in days) else 0,
        "width": len(days) * BAR_STEP,
        "height": CHART_HEIGHT,
        "bar_width": BAR_WIDTH,
        "series": CHART_SERIES,
    }


@role_required(EVERYONE)
def overview(request: HttpRequest) -> HttpResponse:
    zone = stats.reporting_zone()
    today = stats.today_in(zone)
    # The 30 days of the chart, from the counted daily figures (stats.figures_grouped); the
    # periods are sums of its rows.
    first_day = today - dt.timedelta(days=CHART_DAYS - 1)
    by_day = stats.figures_grouped("day", first_day=first_day, last_day=today)
    days = [(day, by_day.get(day, Figures())) for day in stats.days_from(first_day, today)]
    periods = [
        Period(
            str(label),
            Figures.total(figures for _day, figures in days[-length:]),
            today - dt.timedelta(days=length - 1),
            today,
        )
        for label, length in PERIODS
    ]
    can_follow_up = user_can(request.user, CALL_ACTIONS)
    balances = store_balances()
    context = {
        "balances": balances,
        "periods": periods,
        "returns": Returns.of(periods[-1].figures, [row.store for row in balances]),
        "reports_url": reverse("reports") if user_can(request.user, REPORTS) else "",
        # The follow-up queue of callbacks, for the roles that work it.
        "callbacks_queue_url": (
            f"{reverse('followup_list')}?reason={Order.FollowUp.CALLBACK_REQUESTED}"
            if can_follow_up
            else ""
        ),
        # Orders in front of a person (order_followup_queue_idx: a count of the open queue).
        "needs_decision": Order.objects.exclude(followup="").count(),
        "needs_decision_url": f"{reverse('order_list')}?followup=open",
        "chart": stacked_bars(days),
        "now": stats.calls_in_flight(),
        "zone": zone,
    }
    return render(request, "overview/overview.html", context)


@role_required(EVERYONE)
def balances(request: HtmxHttpRequest) -> HttpResponse:
    """The balances as last stored, for htmx to swap in every minute."""
    if not request.htmx:
        # Without JavaScript the "refresh" link lands here: the page shows the same values.
        return redirect("overview")
    return render(request, "overview/overview.html#balances", {"balances": store_balances()})
