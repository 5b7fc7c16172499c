"""Reports (admins and managers): rates, charges, returns and the money saved, by day or week,
by campaign, by voice id and by store.

Filtered by store and a date range (days in the reporting zone, by the day a call was created;
an order's parcel counts on the day the order was), picked from presets (today, yesterday, 7 and
30 days, this and last month) or typed. Each table adds up the counted daily figures
(stats.figures_grouped); the CSV export writes exactly the rows of one table, every column.

The page is read in seconds: the range's totals first, then whether the calls paid (the return
rate of confirmed, undecided and never called orders side by side, the returns avoided and what
the calls cost), a trend chart of the rates and charges (calls/views/trend.py, SVG drawn on the
server), then the tables newest first, with a few columns and the rest on demand, and runs of
days with nothing to count folded into one line.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.http import HttpRequest, HttpResponse, QueryDict
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from calls.exports import (
    CSV_CONTENT_TYPE,
    attachment,
    export_filename,
    export_refused,
    iter_csv,
    xlsx_response,
)
from calls.figures import stats
from calls.figures.stats import Figures
from calls.forms import ReportFilterForm
from calls.models import Campaign, Store
from calls.permissions import REPORTS, role_required
from calls.views.trend import trend_chart

DEFAULT_DAYS = 30
DEFAULT_PRESET = "last-30-days"
CAMPAIGN_ROWS_SHOWN = 500  # the page stays light; the export has every campaign
GROUPS = ("period", "campaign", "voice", "store")

# Each column is the Figures field or property of its name (docs/deliveries.md defines the
# returns' ones), but for the rates of calls, named in percent (_RENAMED).
CSV_COLUMNS = [
    "calls",
    "placed",
    "answered",
    "confirmed",
    "cancelled",
    "callback_requested",
    "no_input",
    "unreachable",
    "failed",
    "needs_review",
    "withdrawn",
    "decided_by_hand",
    "answer_rate_pct",
    "confirmation_rate_pct",
    "cancel_rate_pct",
    "charges",
    "cost_per_confirmed",
    "notice_calls",
    "notice_charges",
    "shipped",
    "delivered",
    "returned",
    "return_rate",
    "delivered_confirmed",
    "returned_confirmed",
    "delivered_undecided",
    "returned_undecided",
    "delivered_not_called",
    "returned_not_called",
    "cancelled_unshipped",
    "returns_avoided",
    "net_saved",
]
_RENAMED = {
    "answer_rate_pct": "answer_rate",
    "confirmation_rate_pct": "confirmation_rate",
    "cancel_rate_pct": "cancel_rate",
}
# Rupees: money cells in the .xlsx.
MONEY_COLUMNS = ("charges", "cost_per_confirmed", "notice_charges", "returns_avoided", "net_saved")


@dataclass(frozen=True)
class ReportRow:
    label: str
    detail: str  # the campaign's store, the week's days, the day's weekday; blank otherwise
    figures: Figures
    day: dt.date | None = None  # the day, or the week's Monday, of a period row


@dataclass(frozen=True)
class Fold:
    """A run of days (or weeks) without calls, shown as one line instead of rows of zeros."""

    count: int
    unit: str  # "day" or "week"
    first: dt.date
    last: dt.date


@dataclass(frozen=True)
class Preset:
    key: str
    label: str
    first: dt.date
    last: dt.date


def presets(today: dt.date) -> list[Preset]:
    """The ranges a manager asks for most, as of `today` (in the reporting zone)."""
    yesterday = today - dt.timedelta(days=1)
    month_start = today.replace(day=1)
    last_month_end = month_start - dt.timedelta(days=1)
    return [
        Preset("today", _("Today"), today, today),
        Preset("yesterday", _("Yesterday"), yesterday, yesterday),
        Preset("last-7-days", _("Last 7 days"), today - dt.timedelta(days=6), today),
        Preset(
            "last-30-days", _("Last 30 days"), today - dt.timedelta(days=DEFAULT_DAYS - 1), today
        ),
        Preset("this-month", _("This month"), month_start, today),
        Preset("last-month", _("Last month"), last_month_end.replace(day=1), last_month_end),
    ]


def counts_anything(figures: Figures) -> bool:
    """A row worth a line of its own: calls, or orders whose parcel or cancellation counts."""
    return bool(
        figures.calls or figures.notice_calls or figures.shipped or figures.cancelled_unshipped
    )


def newest_first_folded(rows: list[ReportRow], unit: str) -> list[ReportRow | Fold]:
    """`rows` (oldest first) newest first, each run of rows with nothing counted (no calls, no
    parcel, no cancelled order) folded into a Fold."""
    shown: list[ReportRow | Fold] = []
    empty: list[ReportRow] = []

    def fold() -> None:
        if empty:
            # Newest first: the run's first row seen is its last day.
            first, last = empty[-1].day, empty[0].day
            assert first is not None and last is not None
            shown.append(Fold(len(empty), unit, first, last))
            empty.clear()

    for row in reversed(rows):
        if counts_anything(row.figures):
            fold()
            shown.append(row)
        else:
            empty.append(row)
    fold()
    return shown


@dataclass(frozen=True)
class Table:
    group: str
    title: str
    key_heading: str
    rows: list[ReportRow]
    total: Figures
    truncated: bool = False

    @property
    def total_row(self) -> ReportRow:
        return ReportRow(_("Total"), "", self.total)

    @property
    def shown(self) -> list[ReportRow | Fold]:
        """The rows as the page shows them: by period newest first with empty runs folded;
        campaigns, voices and stores as they come (they count something by construction)."""
        if self.group != "period":
            return list(self.rows)
        return newest_first_folded(self.rows, "week" if self.key_heading == "Week" else "day")


def _today() -> dt.date:
    """Today in the reporting zone (a function, so that tests can fix the clock)."""
    return stats.today_in(stats.reporting_zone())


def _filter_form(params: QueryDict, today: dt.date) -> ReportFilterForm:
    by_key = {preset.key: preset for preset in presets(today)}
    chosen = by_key.get(params.get("range", ""), by_key[DEFAULT_PRESET])
    data: dict[str, Any] = {
        "date_from": chosen.first.isoformat(),
        "date_to": chosen.last.isoformat(),
        "period": "day",
        "store": "",
    }
    given = {key: value for key, value in params.items() if key in data and value}
    if params.get("range") in by_key:
        # A preset link sets the dates; only the store and the period come with it.
        given.pop("date_from", None)
        given.pop("date_to", None)
    data.update(given)
    return ReportFilterForm(data)


def period_table(filters: dict[str, Any], grouped: dict[Any, Figures]) -> Table:
    """`grouped`: the figures by day, or by week when the filters ask for weeks."""
    first, last = filters["date_from"], filters["date_to"]
    if filters["period"] == "week":
        rows = [
            ReportRow(
                _("Week of %(monday)s") % {"monday": f"{monday:%Y-%m-%d}"},
                # "01 Dec – 07 Dec"; the month in the page's language.
                f"{date_format(max(monday, first), 'd M')} – "
                f"{date_format(min(monday + dt.timedelta(days=6), last), 'd M')}",
                grouped.get(monday, Figures()),
                monday,
            )
            for monday in stats.mondays_from(first, last)
        ]
        return Table(
            "period",
            _("By week"),
            gettext_noop("Week"),
            rows,
            Figures.total(r.figures for r in rows),
        )
    rows = [
        # The weekday in the page's language ("Sun"), as the week's days above.
        ReportRow(f"{day:%Y-%m-%d}", date_format(day, "D"), grouped.get(day, Figures()), day)
        for day in stats.days_from(first, last)
    ]
    return Table(
        "period", _("By day"), gettext_noop("Day"), rows, Figures.total(r.figures for r in rows)
    )


def campaign_table(grouped: dict[int, Figures], *, limit: int | None) -> Table:
    # Newest campaigns first (ids grow with time); the names come in one more query.
    ids = sorted(grouped, reverse=True)
    truncated = limit is not None and len(ids) > limit
    shown = ids[:limit] if limit is not None else ids
    campaigns = Campaign.objects.select_related("store").in_bulk(shown)
    rows = [
        ReportRow(campaigns[pk].name, campaigns[pk].store.name, grouped[pk])
        for pk in shown
        if pk in campaigns
    ]
    total = Figures.total(grouped.values())
    return Table("campaign", _("By campaign"), gettext_noop("Campaign"), rows, total, truncated)


def voice_table(grouped: dict[int, Figures]) -> Table:
    rows = [
        ReportRow(_("Voice %(voice)s") % {"voice": voice}, "", grouped[voice])
        for voice in sorted(grouped)
    ]
    return Table(
        "voice", _("By voice id"), gettext_noop("Voice id"), rows, Figures.total(grouped.values())
    )


def store_table(grouped: dict[int, Figures]) -> Table:
    # A handful of stores: their names in one query, alphabetical.
    stores = Store.objects.only("name").in_bulk(list(grouped))
    rows = sorted(
        (
            ReportRow(stores[pk].name, "", figures)
            for pk, figures in grouped.items()
            if pk in stores
        ),
        key=lambda row: row.label.casefold(),
    )
    return Table(
        "store", _("By store"), gettext_noop("Store"), rows, Figures.total(grouped.values())
    )


def _tables(groups: Iterable[str], filters: dict[str, Any], *, limit: int | None) -> list[Table]:
    """The tables of `groups`, their figures counted together (stats.figures_grouped_many)."""
    groupings: dict[str, stats.Grouping] = {
        "period": "week" if filters["period"] == "week" else "day",
        "campaign": "campaign",
        "voice": "voice",
        "store": "store",
    }
    wanted = [groupings[group] for group in groups]
    grouped = stats.figures_grouped_many(
        wanted,
        first_day=filters["date_from"],
        last_day=filters["date_to"],
        store=filters.get("store") or None,
    )
    tables = []
    for group in groups:
        figures = grouped[groupings[group]]
        if group == "campaign":
            tables.append(campaign_table(figures, limit=limit))
        elif group == "voice":
            tables.append(voice_table(figures))
        elif group == "store":
            tables.append(store_table(figures))
        else:
            tables.append(period_table(filters, figures))
    return tables


@dataclass(frozen=True)
class ReturnsOf:
    """The parcels of one kind of order (by how it was decided) that reached their end."""

    key: str
    label: str
    delivered: int
    returned: int

    @property
    def ended(self) -> int:
        return self.delivered + self.returned

    @property
    def return_rate(self) -> Decimal | None:
        return stats.rate(self.returned, self.ended)


def returns_by_decision(f: Figures) -> list[ReturnsOf]:
    """The comparison that says whether confirming cuts returns: the return rate of confirmed
    orders beside that of orders called but undecided and of orders never called, then of every
    parcel (which also holds the few shipped although cancelled)."""
    return [
        ReturnsOf(
            "confirmed",
            _("Confirmed (key press or by hand)"),
            f.delivered_confirmed,
            f.returned_confirmed,
        ),
        ReturnsOf(
            "undecided", _("Called, no decision"), f.delivered_undecided, f.returned_undecided
        ),
        ReturnsOf("not_called", _("Never called"), f.delivered_not_called, f.returned_not_called),
        ReturnsOf("all", _("Every parcel"), f.delivered, f.returned),
    ]


@dataclass(frozen=True)
class PresetLink:
    preset: Preset
    current: bool


def _preset_links(today: dt.date, filters: dict[str, Any] | None) -> list[PresetLink]:
    """The presets, the one whose range is on show current (also when its dates were typed).
    Each is a submit button of the filter form (range=<key>), so a store chosen in the form
    and not yet shown goes with it."""
    filters = filters or {}
    shown = (filters.get("date_from"), filters.get("date_to"))
    links: list[PresetLink] = []
    for preset in presets(today):
        # On the 1st, "Today" and "This month" are the same range: mark the first only.
        current = shown == (preset.first, preset.last) and not any(link.current for link in links)
        links.append(PresetLink(preset, current))
    return links


@role_required(REPORTS)
def report(request: HttpRequest) -> HttpResponse:
    today = _today()
    form = _filter_form(request.GET, today)
    context: dict[str, Any] = {"form": form, "tables": []}
    filters = form.cleaned_data if form.is_valid() else None
    context["presets"] = _preset_links(today, filters)
    if filters is not None:
        tables = _tables(GROUPS, filters, limit=CAMPAIGN_ROWS_SHOWN)
        period = tables[0]
        context["tables"] = tables
        context["total"] = period.total
        context["returns"] = returns_by_decision(period.total)
        context["without_return_cost"] = stats.stores_without_return_cost(
            filters.get("store") or None
        )
        context["trend"] = trend_chart(
            [(row.day, row.figures) for row in period.rows if row.day is not None],
            unit="week" if filters["period"] == "week" else "day",
        )
        context["export_query"] = _filter_query(filters, with_period=True)
        context["filter_query"] = _filter_query(filters, with_period=False)
        context["zone"] = stats.reporting_zone()
    status = 200 if form.is_valid() else 400
    return render(request, "reports/report.html", context, status=status)


def _filter_query(filters: dict[str, Any], *, with_period: bool) -> str:
    query = QueryDict(mutable=True)
    query["date_from"] = filters["date_from"].isoformat()
    query["date_to"] = filters["date_to"].isoformat()
    if with_period:
        query["period"] = filters["period"]
    if filters.get("store"):
        query["store"] = str(filters["store"].pk)
    return query.urlencode()


def csv_rows(table: Table) -> Iterable[list[Any]]:
    """The table as export rows, the header first; calls.exports formats and defuses each cell
    for CSV or .xlsx (labels are merchants' own text: campaign and store names)."""
    yield [table.key_heading.lower().replace(" ", "_"), "detail", *CSV_COLUMNS]
    by_day = table.group == "period" and table.key_heading == "Day"
    for row in [*table.rows, table.total_row]:
        values = [getattr(row.figures, _RENAMED.get(name, name)) for name in CSV_COLUMNS]
        # A day is a date (a date cell in an .xlsx, the same "2026-11-29" in a CSV).
        label = row.day if by_day and row.day is not None else row.label
        yield [label, row.detail, *values]


@role_required(REPORTS)
def report_export(request: HttpRequest, as_xlsx: bool = False) -> HttpResponseBase:
    form = _filter_form(request.GET, _today())
    if not form.is_valid():
        return export_refused(form)
    filters = form.cleaned_data
    group = request.GET.get("group", "period")
    if group not in GROUPS:
        return HttpResponse(
            _("Cannot export: group must be one of %(groups)s.") % {"groups": ", ".join(GROUPS)},
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    (table,) = _tables([group], filters, limit=None)
    name = "week" if group == "period" and filters["period"] == "week" else group
    if name == "period":
        name = "day"
    filename = export_filename(
        f"robodash-report-by-{name}",
        store=filters.get("store"),
        first=filters["date_from"],
        last=filters["date_to"],
        today=_today(),
    )
    if as_xlsx:
        return xlsx_response(
            csv_rows(table), f"{filename}.xlsx", title=f"By {name}", money_columns=MONEY_COLUMNS
        )
    # At most a year of days: small enough to answer whole (with the BOM Excel needs).
    response = HttpResponse("".join(iter_csv(csv_rows(table))), content_type=CSV_CONTENT_TYPE)
    response["Content-Disposition"] = attachment(f"{filename}.csv")
    return response
