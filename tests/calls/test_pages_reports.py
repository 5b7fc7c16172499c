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

from calls.models import Call, Campaign, Order, Store
from calls.transitions import record_delivery
from tests.calls.test_stats import add_calls
from tests.support.pages import text_of

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
    assert "group must be one of period, campaign, voice, store" in response.content.decode()


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
    assert head.count('<th scope="col"') == 10
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


# --- Returns and money: what became of the parcels, and whether the calls paid ----------------

RETURNS_COLUMNS = [
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


def parcels(calls: list[Call], delivery: str) -> None:
    for call in calls:
        record_delivery(call.shop_order_id, delivery, via=Order.DeliveryVia.SHEET)


@pytest.fixture
def may_parcels(store, other_store) -> dict[str, Campaign]:
    """Orders of 2 and 3 May 2024 and what became of their parcels, hand-counted. Karachi's
    return cost is Rs 400; Lahore's is not set."""
    Store.objects.filter(pk=store.pk).update(return_cost=Decimal("400.00"))
    orders = Campaign.objects.create(store=store, name="May orders")
    lahore = Campaign.objects.create(store=other_store, name="Lahore May")
    confirmed = add_calls(
        orders, 4, outcome=Call.Outcome.CONFIRMED, charges="11.00", created_at=karachi(2)
    )
    parcels(confirmed[:3], Order.Delivery.DELIVERED)
    parcels(confirmed[3:], Order.Delivery.RETURNED)
    no_input = add_calls(
        orders, 2, outcome=Call.Outcome.NO_INPUT, charges="0.90", created_at=karachi(2)
    )
    parcels(no_input[:1], Order.Delivery.RETURNED)
    parcels(no_input[1:], Order.Delivery.DELIVERED)
    # Never called (withdrawn while queued), shipped all the same, and sent back.
    parcels(
        add_calls(orders, 1, outcome=Call.Outcome.WITHDRAWN, created_at=karachi(2)),
        Order.Delivery.RETURNED,
    )
    cancelled = add_calls(
        orders, 3, outcome=Call.Outcome.CANCELLED, charges="5.50", created_at=karachi(2)
    )
    parcels(cancelled[:1], Order.Delivery.RETURNED)  # shipped although cancelled
    in_transit = add_calls(
        orders, 1, outcome=Call.Outcome.CONFIRMED, charges="11.00", created_at=karachi(3)
    )
    parcels(in_transit, Order.Delivery.SHIPPED)
    # A notice call ("your order has shipped") on the first confirmed order, on 3 May.
    Call.objects.create(
        store=store,
        campaign=orders,
        shop_order_id=confirmed[0].shop_order_id,
        purpose=Call.Purpose.NOTICE,
        notice_of=Call.NoticeOf.SHIPPED,
        order_id=confirmed[0].order_id,
        phone=confirmed[0].phone,
        amount=confirmed[0].amount,
        voice_id=110,
        state=Call.State.FINAL,
        outcome=Call.Outcome.NO_INPUT,
        call_charges=Decimal("3.00"),
        created_at=karachi(3),
        sent_at=karachi(3),
        finalized_at=karachi(3),
    )
    add_calls(lahore, 2, outcome=Call.Outcome.CANCELLED, charges="6.00", created_at=karachi(2))
    parcels(
        add_calls(lahore, 1, outcome=Call.Outcome.CONFIRMED, charges="6.00", created_at=karachi(2)),
        Order.Delivery.DELIVERED,
    )
    return {"orders": orders, "lahore": lahore}


def by_label(rows: list[list[str]]) -> dict[str, dict[str, str]]:
    return {row[0]: dict(zip(rows[0], row, strict=True)) for row in rows[1:]}


def test_the_returns_figures_of_one_store_are_hand_counted(
    client, manager_user, may_parcels, store
):
    client.force_login(manager_user)

    total = tables_of(client.get(report_url(store=str(store.pk))))["period"].total

    assert (total.shipped, total.delivered, total.returned, total.in_transit) == (9, 4, 4, 1)
    assert total.return_rate == Decimal("50.0")
    assert (total.delivered_confirmed, total.returned_confirmed) == (3, 1)
    assert (total.delivered_undecided, total.returned_undecided) == (1, 1)
    assert (total.delivered_not_called, total.returned_not_called) == (0, 1)
    assert (total.cancelled_unshipped, total.returns_avoided) == (2, Decimal("800.00"))
    assert (total.notice_calls, total.notice_charges) == (1, Decimal("3.00"))
    assert total.charges == Decimal("73.30")  # 5 x 11.00 + 2 x 0.90 + 3 x 5.50
    assert total.net_saved == Decimal("723.70")  # 800.00 - 73.30 - 3.00


@pytest.mark.parametrize("group", ["period", "campaign", "voice", "store"])
def test_the_csv_shows_parcels_returns_and_money_that_add_up(
    client, admin_user, may_parcels, group
):
    client.force_login(admin_user)

    rows = read_csv(client.get(report_url("report_export", group=group)))

    assert rows[0][2:] == [*rows[0][2:19], *RETURNS_COLUMNS]  # exactly these names, last
    assert rows[-1][0] == "Total"
    for row in by_label(rows).values():
        money = {name: Decimal(row[name]) for name in ("returns_avoided", "net_saved")}
        charges = Decimal(row["charges"]) + Decimal(row["notice_charges"])
        assert money["net_saved"] == money["returns_avoided"] - charges, row
        counts = {name: int(row[name]) for name in RETURNS_COLUMNS[2:13] if "rate" not in name}
        for end in ("delivered", "returned"):
            split = sum(
                counts[f"{end}_{kind}"] for kind in ("confirmed", "undecided", "not_called")
            )
            assert split <= counts[end], row
        assert counts["delivered"] + counts["returned"] <= counts["shipped"], row
    total = by_label(rows)["Total"]
    assert (total["shipped"], total["delivered"], total["returned"]) == ("10", "5", "4")
    assert total["return_rate"] == "44.4"  # 4 of 9, in percent as the page shows it
    assert (total["cancelled_unshipped"], total["returns_avoided"]) == ("4", "800.00")
    assert total["net_saved"] == str(Decimal("800.00") - Decimal("73.30") - Decimal("3.00") - 18)


def test_the_csv_by_store_has_a_row_per_store(client, admin_user, may_parcels):
    client.force_login(admin_user)

    rows = by_label(read_csv(client.get(report_url("report_export", group="store"))))

    assert list(rows) == ["Karachi Kitchenware", "Lahore Linen", "Total"]
    assert rows["Lahore Linen"]["cancelled_unshipped"] == "2"
    assert rows["Lahore Linen"]["returns_avoided"] == "0.00"  # no return cost set
    assert rows["Karachi Kitchenware"]["net_saved"] == "723.70"


def test_the_page_compares_return_rates_and_calls_returns_avoided_an_upper_bound(
    client, manager_user, may_parcels
):
    client.force_login(manager_user)

    response = client.get(report_url())

    rates = {kind.key: kind.return_rate for kind in response.context["returns"]}
    assert rates == {
        "confirmed": Decimal("20.0"),  # 1 of 5 (Lahore's delivered one too)
        "undecided": Decimal("50.0"),
        "not_called": Decimal("100.0"),
        "all": Decimal("44.4"),
    }
    page = text_of(response)
    returns = page[page.index('id="returns-title"') : page.index('id="trend-title"')]
    assert "Confirmed (key press or by hand)" in returns and "Never called" in returns
    assert "if every cancelled order would have come back" in returns
    assert "Rs 800.00" in returns and "Rs 705.70" in returns  # avoided, and net of every call
    assert "4 orders cancelled before shipping" in returns
    assert "Rs 3.00 for 1 notice call" in returns
    # Lahore's cancelled orders count nothing: the page names the store to fix.
    assert "No return cost is set for:" in returns and "Lahore Linen" in returns
    assert 'id="table-store"' in page
    # The trend has a return rate line (2 May: 4 of 9 parcels back).
    chart = page[page.index('<svg class="trend-chart"') : page.index("</svg>")]
    assert 'class="tr-series tr-return"' in chart and "Return rate 44.4%" in chart


def test_a_range_without_parcels_says_where_they_come_from(client, manager_user, may, store):
    client.force_login(manager_user)

    eighth_of_may = {"date_from": "2024-05-08", "date_to": "2024-05-08"}  # no order cancelled

    page = text_of(client.get(report_url(store=str(store.pk), **eighth_of_may)))

    assert "No parcel of this range's orders is known to have shipped" in page


def test_the_reports_render_in_urdu_with_parcels(client, admin_user, may_parcels):
    admin_user.language = "ur"
    admin_user.save()
    client.force_login(admin_user)

    response = client.get(report_url())

    assert response.status_code == 200
    assert 'id="returns-title"' in response.content.decode()
