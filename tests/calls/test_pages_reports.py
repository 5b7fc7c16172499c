"""Reports: rates by day and week, by campaign and voice id, filtered by store and dates;
the CSV export (same rows, safe from spreadsheet formulas); and a bounded query count."""

import csv
import datetime as dt
import html
import io
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from calls.models import Call, Campaign, Store
from tests.calls.test_stats import add_calls

FORMULA = '=HYPERLINK("http://evil.example","click")'


def karachi(day: int) -> dt.datetime:
    """10:00 on `day` May 2024 in Karachi (UTC+5), as an aware UTC datetime."""
    return dt.datetime(2024, 5, day, 5, 0, tzinfo=dt.UTC)


@pytest.fixture
def other_store(db) -> Store:
    store = Store(name="Lahore Linen")
    store.api_key = "sk-other-0000000000000000"
    store.save()
    return store


@pytest.fixture
def may(store, other_store) -> dict[str, Campaign]:
    """Hand-counted calls, 1-14 May 2024 (Karachi days)."""
    orders = Campaign.objects.create(store=store, name="May orders")
    tricky = Campaign.objects.create(store=store, name=FORMULA)
    lahore = Campaign.objects.create(store=other_store, name="Lahore May")
    add_calls(orders, 2, outcome=Call.Outcome.CONFIRMED, charges="11.00", created_at=karachi(2))
    add_calls(orders, 1, outcome=Call.Outcome.CANCELLED, charges="5.50", created_at=karachi(2))
    add_calls(
        tricky, 1, outcome=Call.Outcome.NO_INPUT, charges="0.90", created_at=karachi(3), voice_id=48
    )
    add_calls(tricky, 1, outcome=Call.Outcome.UNREACHABLE, created_at=karachi(3), voice_id=48)
    add_calls(orders, 1, outcome=Call.Outcome.CONFIRMED, charges="11.00", created_at=karachi(8))
    add_calls(orders, 1, outcome=Call.Outcome.WITHDRAWN, created_at=karachi(8))
    add_calls(lahore, 4, outcome=Call.Outcome.CONFIRMED, charges="5.50", created_at=karachi(2))
    # Outside the range: the last hour of 30 April and the first of 15 May, Karachi time.
    last_hour_of_april = dt.datetime(2024, 4, 30, 18, 30, tzinfo=dt.UTC)  # 23:30 in Karachi
    first_hour_of_15_may = dt.datetime(2024, 5, 14, 19, 30, tzinfo=dt.UTC)  # 00:30 in Karachi
    add_calls(orders, 1, outcome=Call.Outcome.CONFIRMED, created_at=last_hour_of_april)
    add_calls(orders, 1, outcome=Call.Outcome.CONFIRMED, created_at=first_hour_of_15_may)
    return {"orders": orders, "tricky": tricky, "lahore": lahore}


def report_url(name: str = "reports", **params: str) -> str:
    query = {"date_from": "2024-05-01", "date_to": "2024-05-14", **params}
    return reverse(name) + "?" + "&".join(f"{k}={v}" for k, v in query.items())


def tables_of(response) -> dict:
    return {table.group: table for table in response.context["tables"]}


def read_csv(response) -> list[list[str]]:
    text = response.content.decode()
    assert text.startswith("\ufeff")  # the BOM: Excel then reads the names as UTF-8
    return list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))


@pytest.mark.parametrize("persona", ["admin_user", "manager_user"])
def test_admins_and_managers_may_read_and_export_reports(client, persona, request, db):
    client.force_login(request.getfixturevalue(persona))

    assert client.get(reverse("reports")).status_code == 200
    assert client.get(reverse("report_export")).status_code == 200


def test_agents_may_neither_read_nor_export_reports(client, agent_user):
    client.force_login(agent_user)

    assert client.get(reverse("reports")).status_code == 403
    assert client.get(reverse("report_export")).status_code == 403


def test_days_of_one_store_with_their_rates_and_charges(client, manager_user, may, store):
    client.force_login(manager_user)

    response = client.get(report_url(store=str(store.pk)))

    period = tables_of(response)["period"]
    assert len(period.rows) == 14
    second = period.rows[1]
    assert second.label == "2024-05-02"
    assert (second.figures.calls, second.figures.confirmed, second.figures.cancelled) == (3, 2, 1)
    assert second.figures.confirmation_rate == Decimal("66.7")
    total = period.total
    assert (total.calls, total.answered, total.rated_finals) == (7, 5, 6)
    assert total.answer_rate == Decimal("83.3")
    assert total.confirmation_rate == Decimal("60.0")
    assert total.cancel_rate == Decimal("20.0")
    assert total.charges == Decimal("39.40")
    assert total.cost_per_confirmed == Decimal("13.13")
    page = html.unescape(response.content.decode())
    assert "Lahore May" not in page


def test_all_stores_together_when_no_store_is_chosen(client, manager_user, may):
    client.force_login(manager_user)

    total = tables_of(client.get(report_url()))["period"].total

    assert (total.calls, total.confirmed) == (11, 7)


def test_the_week_toggle_groups_days_into_weeks_from_monday(client, manager_user, may, store):
    client.force_login(manager_user)

    period = tables_of(client.get(report_url(store=str(store.pk), period="week")))["period"]

    assert [(row.label, row.figures.calls) for row in period.rows] == [
        ("Week of 2024-04-29", 5),
        ("Week of 2024-05-06", 2),
        ("Week of 2024-05-13", 0),
    ]
    assert period.title == "By week"


def test_campaign_and_voice_tables(client, manager_user, may, store):
    client.force_login(manager_user)

    tables = tables_of(client.get(report_url(store=str(store.pk))))

    campaigns = {row.label: row.figures for row in tables["campaign"].rows}
    assert set(campaigns) == {"May orders", FORMULA}
    assert campaigns["May orders"].calls == 5
    assert campaigns[FORMULA].answer_rate == Decimal("50.0")
    voices = {row.label: row.figures.calls for row in tables["voice"].rows}
    assert voices == {"Voice 48": 2, "Voice 102": 5}


def test_the_csv_export_has_the_rows_of_the_table(client, manager_user, may, store):
    client.force_login(manager_user)
    table = tables_of(client.get(report_url(store=str(store.pk))))["campaign"]

    response = client.get(report_url("report_export", store=str(store.pk), group="campaign"))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert (  # what it holds: the table, the store and the range
        "robodash-report-by-campaign-karachi-kitchenware-20240501-20240514.csv"
        in response["Content-Disposition"]
    )
    rows = read_csv(response)
    assert rows[0][:5] == ["campaign", "detail", "calls", "placed", "answered"]
    body = rows[1:]
    assert [row[0] for row in body[:-1]] == [
        "'" + r.label if r.label.startswith("=") else r.label for r in table.rows
    ]
    assert body[-1][0] == "Total"
    by_name = {row[0]: dict(zip(rows[0], row, strict=True)) for row in body}
    orders = by_name["May orders"]
    assert (orders["calls"], orders["confirmed"], orders["cancelled"]) == ("5", "3", "1")
    assert orders["answer_rate_pct"] == "100.0"  # 4 answered of 4 final (1 withdrawn left out)
    assert orders["confirmation_rate_pct"] == "75.0"
    assert orders["charges"] == "38.50"
    assert orders["cost_per_confirmed"] == "12.83"
    assert by_name["Total"]["calls"] == "7"


def test_the_csv_export_of_weeks_matches_the_week_table(client, admin_user, may):
    client.force_login(admin_user)

    rows = read_csv(client.get(report_url("report_export", group="period", period="week")))

    assert rows[0][0] == "week"
    assert [(row[0], row[2]) for row in rows[1:]] == [
        ("Week of 2024-04-29", "9"),
        ("Week of 2024-05-06", "2"),
        ("Week of 2024-05-13", "0"),
        ("Total", "11"),
    ]


@pytest.mark.parametrize(
    ("language", "weekdays"),
    [
        ("en", ["Wed", "Thu", "Fri"]),
        ("ur", ["بدھ", "جمعرات", "جمعہ"]),
    ],
)
def test_the_csv_export_of_days_names_each_weekday_in_the_readers_language(
    client, admin_user, may, language, weekdays
):
    admin_user.language = language
    admin_user.save()
    client.force_login(admin_user)

    rows = read_csv(
        client.get(
            report_url(
                "report_export",
                group="period",
                period="day",
                date_from="2024-05-01",
                date_to="2024-05-03",
            )
        )
    )

    assert [(row[0], row[1]) for row in rows[1:-1]] == [
        ("2024-05-01", weekdays[0]),
        ("2024-05-02", weekdays[1]),
        ("2024-05-03", weekdays[2]),
    ]


@pytest.mark.parametrize("name", [FORMULA, "+1+2", "-2+3", "@SUM(A1:A9)", "\tcmd"])
def test_the_csv_export_defuses_cells_a_spreadsheet_would_run(client, admin_user, store, name):
    campaign = Campaign.objects.create(store=store, name=name)
    add_calls(campaign, 1, outcome=Call.Outcome.CONFIRMED, created_at=karachi(2))
    client.force_login(admin_user)

    rows = read_csv(client.get(report_url("report_export", group="campaign")))

    assert rows[1][0] == "'" + name
    assert all(not cell.startswith(("=", "+", "-", "@", "\t")) for row in rows for cell in row)


def test_a_range_ending_before_it_starts_is_refused_with_a_reason(client, manager_user, db):
    client.force_login(manager_user)

    page = client.get(reverse("reports") + "?date_from=2024-05-10&date_to=2024-05-01")
    export = client.get(reverse("report_export") + "?date_from=2024-05-10&date_to=2024-05-01")

    assert page.status_code == 400
    assert "The end date is before the start date." in page.content.decode()
    assert export.status_code == 400
    assert "The end date is before the start date." in export.content.decode()


def test_a_range_longer_than_a_year_is_refused(client, manager_user, db):
    client.force_login(manager_user)

    response = client.get(reverse("reports") + "?date_from=2023-01-01&date_to=2024-05-01")

    assert response.status_code == 400
    assert "Choose at most 366 days" in response.content.decode()


def test_an_unknown_export_group_is_refused(client, manager_user, db):
    client.force_login(manager_user)

    response = client.get(reverse("report_export") + "?group=phone")

    assert response.status_code == 400
    assert "group must be one of period, campaign, voice" in response.content.decode()


def test_the_default_report_covers_the_last_30_days(client, manager_user, store):
    campaign = Campaign.objects.create(store=store, name="Recent")
    add_calls(campaign, 2, outcome=Call.Outcome.CONFIRMED, created_at=timezone.now())
    add_calls(
        campaign,
        3,
        outcome=Call.Outcome.CONFIRMED,
        created_at=timezone.now() - dt.timedelta(days=45),
    )
    client.force_login(manager_user)

    period = tables_of(client.get(reverse("reports")))["period"]

    assert len(period.rows) == 30
    assert period.total.calls == 2


def _queries_for(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


def test_reports_run_as_many_queries_for_1000_calls_as_for_10(client, manager_user, store):
    campaigns = [Campaign.objects.create(store=store, name=f"C{n}") for n in range(4)]
    add_calls(campaigns[0], 10, outcome=Call.Outcome.CONFIRMED, charges="5.50")
    client.force_login(manager_user)
    with_10 = _queries_for(client, reverse("reports"))

    now = timezone.now()
    for n, campaign in enumerate(campaigns):
        add_calls(
            campaign,
            330 if n < 3 else 0,
            outcome=Call.Outcome.NO_INPUT,
            created_at=now - dt.timedelta(days=n * 7),
            voice_id=100 + n,
        )
    assert Call.objects.count() == 1000
    with_1000 = _queries_for(client, reverse("reports"))

    assert with_1000 == with_10


# --- Read in ten seconds: presets, totals first, newest first, empty days folded, the trend ---

FIXED_TODAY = dt.date(2024, 5, 14)


@pytest.fixture
def on_14_may(monkeypatch):
    """The reports' clock fixed at 14 May 2024 in the reporting zone."""
    monkeypatch.setattr("calls.views.reports._today", lambda: FIXED_TODAY)


def test_each_preset_chooses_its_range_and_is_marked_current(client, manager_user, on_14_may):
    client.force_login(manager_user)
    expected = {
        "today": ("2024-05-14", "2024-05-14", "Today"),
        "yesterday": ("2024-05-13", "2024-05-13", "Yesterday"),
        "last-7-days": ("2024-05-08", "2024-05-14", "Last 7 days"),
        "last-30-days": ("2024-04-15", "2024-05-14", "Last 30 days"),
        "this-month": ("2024-05-01", "2024-05-14", "This month"),
        "last-month": ("2024-04-01", "2024-04-30", "Last month"),
    }

    for key, (first, last, label) in expected.items():
        response = client.get(reverse("reports") + f"?range={key}")
        chosen = response.context["form"].cleaned_data
        assert (chosen["date_from"].isoformat(), chosen["date_to"].isoformat()) == (first, last)
        current = [link.preset.label for link in response.context["presets"] if link.current]
        assert current == [label]
        assert f'aria-current="true">{label}</button>' in response.content.decode()

    default = client.get(reverse("reports")).context["form"].cleaned_data
    assert (default["date_from"], default["date_to"]) == (dt.date(2024, 4, 15), FIXED_TODAY)


def test_a_preset_submits_the_filter_form_so_the_store_chosen_there_is_kept(
    client, manager_user, store, on_14_may
):
    client.force_login(manager_user)
    page = client.get(reverse("reports")).content.decode()
    assert '<button type="submit" form="report-filters" name="range" value="yesterday">' in page
    assert '<form class="filters card" id="report-filters"' in page

    # What the form sends when a store is chosen, then "Yesterday" pressed: the form's dates
    # (the range on show) give way to the preset's.
    response = client.get(
        reverse("reports"),
        {
            "date_from": "2024-04-15",
            "date_to": "2024-05-14",
            "store": store.pk,
            "period": "day",
            "range": "yesterday",
        },
    )

    chosen = response.context["form"].cleaned_data
    assert chosen["store"] == store
    assert chosen["date_from"] == chosen["date_to"] == dt.date(2024, 5, 13)


def test_days_show_totals_first_then_newest_first_with_empty_days_folded(
    client, manager_user, may, store
):
    client.force_login(manager_user)

    response = client.get(report_url(store=str(store.pk)))

    shown = tables_of(response)["period"].shown
    assert [
        (entry.count, entry.first, entry.last) if hasattr(entry, "count") else entry.day
        for entry in shown
    ] == [
        (6, dt.date(2024, 5, 9), dt.date(2024, 5, 14)),
        dt.date(2024, 5, 8),
        (4, dt.date(2024, 5, 4), dt.date(2024, 5, 7)),
        dt.date(2024, 5, 3),
        dt.date(2024, 5, 2),
        (1, dt.date(2024, 5, 1), dt.date(2024, 5, 1)),
    ]
    page = html.unescape(response.content.decode())
    by_day = page[page.index('id="table-period"') :]
    order = [
        by_day.index(text)
        for text in (
            "Total",
            "6 days without calls",
            "Wed 8 May 2024",
            "4 days without calls",
            "Fri 3 May 2024",
            "Thu 2 May 2024",
            "1 day without calls",
        )
    ]
    assert order == sorted(order)
    # The range's totals come before the chart and the tables.
    assert page.index("60.0%") < page.index('id="trend-title"') < page.index('id="table-period"')
    assert "of 6 finished calls" in page  # the answer rate says what it counts


def test_the_day_table_fits_a_laptop_and_keeps_the_rest_on_demand(client, manager_user, may, store):
    client.force_login(manager_user)

    page = client.get(report_url(store=str(store.pk))).content.decode()

    head = page[page.index('id="table-period"') :]
    head = head[head.index("<thead>") : head.index("</thead>")]
    assert head.count('<th scope="col"') == 8
    assert '<details class="rp-more"><summary>More</summary>' in page
    assert "<dt>Unreachable</dt><dd>1</dd>" in page  # the store's total, behind "More"


def test_the_trend_chart_draws_each_rate_per_day_on_the_server(client, manager_user, may, store):
    client.force_login(manager_user)

    page = client.get(report_url(store=str(store.pk))).content.decode()

    chart = page[page.index('<svg class="trend-chart"') : page.index("</svg>")]
    assert "<title" in chart and "<desc" in chart
    # 14 days over 700 units from x=48; a rate r at y = 10 + 200 * (100 - r) / 100. 2 May:
    # 2 of 3 confirmed (66.7%); 3 May: the one answer was no input (0%); 4-7 May: no calls,
    # the line breaks; 8 May: the one answered call confirmed (100%).
    assert '<polyline points="101.8,76.6 155.7,210.0" fill="none"/>' in chart
    assert '<polyline points="424.9,10.0" fill="none"/>' in chart
    assert "style=" not in chart
    # The figures behind it, as a table for screen readers and anyone who wants numbers.
    assert "The chart&#x27;s figures" in page or "The chart's figures" in page
    assert "66.7%" in page[page.index("rp-chart-data") :]
