"""Reports (admins and managers): rates and charges by day or week, by campaign, by voice id.

Filtered by store and a date range (days in the reporting zone, by the day a call was created).
Each table adds up the daily rollups of the closed days and counts the other days live
(stats.figures_grouped); the CSV export writes exactly the rows of one table.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from calls import stats
from calls.exports import export_refused, spreadsheet_safe
from calls.forms import ReportFilterForm
from calls.models import Campaign
from calls.permissions import REPORTS, role_required
from calls.stats import Figures

DEFAULT_DAYS = 30
CAMPAIGN_ROWS_SHOWN = 500  # the page stays light; the export has every campaign
GROUPS = ("period", "campaign", "voice")

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
]


@dataclass(frozen=True)
class ReportRow:
    label: str
    detail: str  # the campaign's store, the week's last day; blank otherwise
    figures: Figures


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
        return ReportRow("Total", "", self.total)


def _filter_form(params: QueryDict) -> ReportFilterForm:
    today = stats.today_in(stats.reporting_zone())
    data: dict[str, Any] = {
        "date_from": (today - dt.timedelta(days=DEFAULT_DAYS - 1)).isoformat(),
        "date_to": today.isoformat(),
        "period": "day",
        "store": "",
    }
    data.update({key: value for key, value in params.items() if key in data and value})
    return ReportFilterForm(data)


def period_table(filters: dict[str, Any], grouped: dict[Any, Figures]) -> Table:
    """`grouped`: the figures by day, or by week when the filters ask for weeks."""
    first, last = filters["date_from"], filters["date_to"]
    if filters["period"] == "week":
        rows = [
            ReportRow(
                _("Week of %(monday)s") % {"monday": f"{monday:%Y-%m-%d}"},
                f"{max(monday, first):%d %b} – {min(monday + dt.timedelta(days=6), last):%d %b}",
                grouped.get(monday, Figures()),
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
        ReportRow(f"{day:%Y-%m-%d}", f"{day:%a}", grouped.get(day, Figures()))
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


def _tables(groups: Iterable[str], filters: dict[str, Any], *, limit: int | None) -> list[Table]:
    """The tables of `groups`, their figures counted together (stats.figures_grouped_many)."""
    groupings: dict[str, stats.Grouping] = {
        "period": "week" if filters["period"] == "week" else "day",
        "campaign": "campaign",
        "voice": "voice",
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
        else:
            tables.append(period_table(filters, figures))
    return tables


@role_required(REPORTS)
def report(request: HttpRequest) -> HttpResponse:
    form = _filter_form(request.GET)
    context: dict[str, Any] = {"form": form, "tables": []}
    if form.is_valid():
        filters = form.cleaned_data
        context["tables"] = _tables(GROUPS, filters, limit=CAMPAIGN_ROWS_SHOWN)
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


def _number(value: Decimal | int | None) -> str:
    return "" if value is None else str(value)


def csv_rows(table: Table) -> Iterable[list[str]]:
    yield [table.key_heading.lower().replace(" ", "_"), "detail", *CSV_COLUMNS]
    for row in [*table.rows, table.total_row]:
        f = row.figures
        values = [
            f.calls,
            f.placed,
            f.answered,
            f.confirmed,
            f.cancelled,
            f.callback_requested,
            f.no_input,
            f.unreachable,
            f.failed,
            f.needs_review,
            f.withdrawn,
            f.decided_by_hand,
            f.answer_rate,
            f.confirmation_rate,
            f.cancel_rate,
            f.charges,
            f.cost_per_confirmed,
        ]
        # Labels are merchants' own text (campaign and store names): defuse formulas.
        yield [spreadsheet_safe(row.label), spreadsheet_safe(row.detail)] + [
            spreadsheet_safe(_number(v)) for v in values
        ]


@role_required(REPORTS)
def report_export(request: HttpRequest) -> HttpResponse:
    form = _filter_form(request.GET)
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
    first, last = filters["date_from"], filters["date_to"]
    filename = f"robodash-report-by-{name}-{first:%Y%m%d}-{last:%Y%m%d}.csv"
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    writer.writerows(csv_rows(table))
    return response
