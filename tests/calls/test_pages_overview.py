"""The overview page: balances as beat's refresh stored them from the simulator (or their last
known value), the figures of today, 7 and 30 days, what the calls saved in words, the 30-day
chart, calls in flight, and a query count that does not grow."""

import datetime as dt
import re
import time
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from calls.models import Call, Campaign, Order, Store
from calls.pipeline.balances import refresh_store_balance
from calls.transitions import record_delivery
from tests.calls.test_balances import closed_port_url
from tests.calls.test_stats import add_calls
from tests.conftest import TEST_API_KEY
from tests.support.orders import create_call
from tests.support.pages import text_of

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def campaign(store) -> Campaign:
    return Campaign.objects.create(store=store, name="May orders")


@pytest.mark.parametrize("persona", ["admin_user", "agent_user", "manager_user"])
def test_everyone_signed_in_may_open_the_overview(client, persona, request, store):
    client.force_login(request.getfixturevalue(persona))

    response = client.get(reverse("overview"))

    assert response.status_code == 200
    assert "Karachi Kitchenware" in text_of(response)


def test_the_overview_counts_the_orders_that_need_a_decision(client, manager_user, campaign):
    for n, outcome in enumerate(["no_input", "unreachable", "confirmed"]):
        create_call(
            store=campaign.store,
            campaign=campaign,
            order_id=f"KK-{n}",
            phone="923001234567",
            amount=Decimal(900),
            voice_id=102,
            state=Call.State.FINAL,
            outcome=outcome,
            finalized_at=timezone.now(),
        )
    client.force_login(manager_user)

    page = text_of(client.get(reverse("overview")))

    assert "Needs a decision: <strong>2</strong> orders" in page
    assert f"{reverse('order_list')}?followup=open" in page


def test_signed_out_visitors_are_sent_to_sign_in(client, db):
    response = client.get(reverse("overview"))

    assert response.status_code == 302
    assert reverse("login") in response["Location"]


def test_the_balances_fragment_shows_the_providers_balance_username_and_rate(
    client, admin_user, store, provider_url
):
    client.force_login(admin_user)
    refresh_store_balance(store.pk)  # beat's task, run here

    response = client.get(reverse("overview_balances"), **HTMX)

    assert response.status_code == 200
    page = text_of(response)
    assert "Rs 5,000.00" in page
    assert "teststore" in page
    assert "Rs 5.50 per pulse" in page
    assert "<html" not in page  # only the fragment
    assert TEST_API_KEY not in page
    store.refresh_from_db()
    assert store.balance == Decimal("5000.00")


def test_the_overview_shows_the_balance_last_stored_without_asking_the_provider(
    client, admin_user, store, settings
):
    Store.objects.filter(pk=store.pk).update(
        balance=Decimal("2682.00"),
        balance_username="demo",
        call_rate=Decimal("5.50"),
        balance_checked_at=timezone.now() - dt.timedelta(minutes=3),
    )
    settings.ROBOCALL_BASE_URL = closed_port_url()
    client.force_login(admin_user)

    page = text_of(client.get(reverse("overview")))

    assert "Rs 2,682.00" in page
    assert "as of 3 minutes ago" in page
    # htmx swaps in what beat stored, every minute.
    assert 'hx-get="/overview/balances/"' in page
    assert 'hx-trigger="every 60s"' in page


def test_the_pages_show_what_the_last_refresh_stored_and_never_ask_the_provider(
    client, admin_user, store, provider_url, simulator
):
    client.force_login(admin_user)
    refresh_store_balance(store.pk)
    simulator.add_account(
        api_key=TEST_API_KEY, username="teststore", balance="42.00", call_rate="5.50"
    )
    asked = simulator.stats()
    assert asked["requests"]  # the refresh above was counted: the count can move

    before = text_of(client.get(reverse("overview_balances"), **HTMX))
    client.get(reverse("overview"))
    assert simulator.stats() == asked  # neither page asked the provider
    refresh_store_balance(store.pk)  # a minute later, beat refreshes
    after = text_of(client.get(reverse("overview_balances"), **HTMX))

    assert "Rs 5,000.00" in before
    assert "Rs 42.00" in after


def test_the_overview_answers_at_once_with_the_provider_stalled(
    client, admin_user, store, provider_url, simulator
):
    client.force_login(admin_user)
    refresh_store_balance(store.pk)
    # The last refresh is minutes old: nothing says the stored value is fresh.
    Store.objects.filter(pk=store.pk).update(
        provider_state_at=timezone.now() - dt.timedelta(minutes=10)
    )
    simulator.set_faults(slow_rate=1.0, slow_seconds=30.0)  # every answer takes 30 s

    for path, headers in ((reverse("overview"), {}), (reverse("overview_balances"), HTMX)):
        started = time.monotonic()
        response = client.get(path, **headers)
        elapsed = time.monotonic() - started
        assert response.status_code == 200
        assert "Rs 5,000.00" in text_of(response)
        # A request to the stalled provider would take 30 s; a page is well under one.
        assert elapsed < 1.0, f"{path} took {elapsed:.2f} s"


def test_with_the_provider_down_the_last_known_balance_is_shown_with_its_age(
    client, admin_user, store, settings
):
    Store.objects.filter(pk=store.pk).update(
        balance=Decimal("1234.00"),
        balance_username="teststore",
        call_rate=Decimal("5.50"),
        balance_checked_at=timezone.now() - dt.timedelta(minutes=12, seconds=5),
    )
    settings.ROBOCALL_BASE_URL = closed_port_url()
    client.force_login(admin_user)
    refresh_store_balance(store.pk)

    fragment = client.get(reverse("overview_balances"), **HTMX)
    page = client.get(reverse("overview"))

    assert fragment.status_code == 200
    assert "Provider unreachable: last known value" in text_of(fragment)
    assert "as of 12 minutes ago" in text_of(fragment)
    assert "Rs 1,234.00" in text_of(fragment)
    assert page.status_code == 200
    assert "Rs 1,234.00" in text_of(page)
    assert "as of 12 minutes ago" in text_of(page)


def test_with_the_provider_down_and_no_balance_ever_known_the_page_says_so(
    client, admin_user, store, settings
):
    settings.ROBOCALL_BASE_URL = closed_port_url()
    client.force_login(admin_user)
    refresh_store_balance(store.pk)

    response = client.get(reverse("overview_balances"), **HTMX)

    assert response.status_code == 200
    assert "The provider is not answering and no balance is known yet" in text_of(response)


def test_a_balance_below_the_stores_threshold_is_flagged(
    client, admin_user, store, provider_url, simulator
):
    simulator.add_account(
        api_key=TEST_API_KEY, username="teststore", balance="120.00", call_rate="5.50"
    )
    client.force_login(admin_user)
    refresh_store_balance(store.pk)

    page = text_of(client.get(reverse("overview_balances"), **HTMX))

    assert "Low balance: below this store's threshold of Rs 500.00" in page


def test_a_balance_above_the_threshold_is_not_flagged(client, admin_user, store, provider_url):
    client.force_login(admin_user)
    refresh_store_balance(store.pk)

    page = text_of(client.get(reverse("overview_balances"), **HTMX))

    assert "Low balance" not in page


def test_the_balances_link_without_htmx_returns_to_the_overview(client, admin_user, store):
    client.force_login(admin_user)

    response = client.get(reverse("overview_balances"))

    assert response.status_code == 302
    assert response["Location"] == reverse("overview")


def test_the_periods_count_today_the_last_7_and_the_last_30_days(client, admin_user, campaign):
    now = timezone.now()
    add_calls(campaign, 2, outcome=Call.Outcome.CONFIRMED, charges="11.00", created_at=now)
    add_calls(campaign, 1, outcome=Call.Outcome.CANCELLED, charges="5.50", created_at=now)
    add_calls(campaign, 1, outcome=Call.Outcome.CALLBACK_REQUESTED, created_at=now)
    add_calls(
        campaign,
        3,
        outcome=Call.Outcome.CONFIRMED,
        charges="11.00",
        created_at=now - dt.timedelta(days=3),
    )
    add_calls(campaign, 4, outcome=Call.Outcome.UNREACHABLE, created_at=now - dt.timedelta(days=20))
    add_calls(  # outside every period
        campaign, 5, outcome=Call.Outcome.CONFIRMED, created_at=now - dt.timedelta(days=40)
    )
    client.force_login(admin_user)

    response = client.get(reverse("overview"))

    periods = {period.label: period.figures for period in response.context["periods"]}
    today, week, month = periods["Today"], periods["Last 7 days"], periods["Last 30 days"]
    assert (today.placed, today.confirmed, today.callback_requested) == (4, 2, 1)
    assert today.answer_rate == Decimal("100.0")
    assert today.confirmation_rate == Decimal("50.0")  # 2 of 4 answered
    assert today.cancel_rate == Decimal("25.0")
    assert today.charges == Decimal("27.50")
    assert today.cost_per_confirmed == Decimal("13.75")
    assert (week.placed, week.confirmed) == (7, 5)
    assert (month.placed, month.unreachable) == (11, 4)
    assert month.answer_rate == Decimal("63.6")  # 7 of 11
    page = text_of(response)
    assert "Cost per confirmed order" in page
    assert "Rs 13.75" in page


def test_the_chart_draws_30_days_of_stacked_outcomes(client, admin_user, campaign):
    now = timezone.now()
    add_calls(campaign, 2, outcome=Call.Outcome.CONFIRMED, created_at=now)
    add_calls(campaign, 1, outcome=Call.Outcome.CANCELLED, created_at=now)
    add_calls(campaign, 1, state=Call.State.QUEUED, created_at=now)
    client.force_login(admin_user)

    response = client.get(reverse("overview"))

    bars = response.context["chart"]["bars"]
    assert len(bars) == 30
    today = bars[-1]
    assert [(s.key, s.count) for s in today.segments] == [
        ("confirmed", 2),
        ("cancelled", 1),
        ("pending", 1),
    ]
    # The tallest bar fills the chart; its segments stack without gaps.
    assert sum(s.height for s in today.segments) == pytest.approx(160.0)
    page = text_of(response)
    assert "<svg" in page
    assert 'class="s-confirmed"' in page


def test_calls_in_flight_now_are_counted(client, agent_user, campaign):
    add_calls(campaign, 2, state=Call.State.SENDING)
    add_calls(campaign, 3, state=Call.State.IN_PROGRESS)
    add_calls(campaign, 4, state=Call.State.QUEUED)
    client.force_login(agent_user)

    page = text_of(client.get(reverse("overview")))

    assert "<strong>5</strong> calls in flight" in page
    assert "<strong>4</strong> queued" in page


def test_one_call_in_flight_is_one_call_not_one_calls(client, agent_user, campaign):
    add_calls(campaign, 1, state=Call.State.IN_PROGRESS)
    client.force_login(agent_user)

    page = text_of(client.get(reverse("overview")))

    assert "<strong>1</strong> call in flight" in page
    assert "calls in flight" not in page


def _queries_for(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


def test_the_overview_runs_as_many_queries_for_1000_calls_as_for_10(client, admin_user, campaign):
    client.force_login(admin_user)
    add_calls(campaign, 10, outcome=Call.Outcome.CONFIRMED, charges="5.50")
    with_10 = _queries_for(client, reverse("overview"))

    now = timezone.now()
    for days_ago in range(0, 30, 3):
        add_calls(
            campaign,
            99,
            outcome=Call.Outcome.NO_INPUT,
            created_at=now - dt.timedelta(days=days_ago),
        )
    assert Call.objects.count() == 1000
    with_1000 = _queries_for(client, reverse("overview"))

    assert with_1000 == with_10


# --- Returns and money, in words --------------------------------------------------------------


def words_of(response) -> str:  # type: ignore[no-untyped-def]
    """The page's text without its tags, spaces collapsed: its sentences as read."""
    return " ".join(re.sub(r"<[^>]+>", "", text_of(response)).split())


def parcels(calls: list[Call], delivery: str) -> None:
    for call in calls:
        record_delivery(call.shop_order_id, delivery, via=Order.DeliveryVia.HAND)


@pytest.fixture
def last_month(campaign) -> Campaign:
    """This month's orders: 3 cancelled before shipping, 5 shipped of which 3 delivered and 1
    returned; Rs 5.50 a call (9 calls), and one order of 40 days ago outside every period."""
    now = timezone.now()
    add_calls(campaign, 3, outcome=Call.Outcome.CANCELLED, charges="5.50", created_at=now)
    confirmed = add_calls(
        campaign,
        5,
        outcome=Call.Outcome.CONFIRMED,
        charges="5.50",
        created_at=now - dt.timedelta(days=10),
    )
    parcels(confirmed[:3], Order.Delivery.DELIVERED)
    parcels(confirmed[3:4], Order.Delivery.RETURNED)
    parcels(confirmed[4:], Order.Delivery.SHIPPED)
    add_calls(campaign, 1, outcome=Call.Outcome.NO_INPUT, charges="5.50", created_at=now)
    add_calls(  # outside the 30 days
        campaign, 1, outcome=Call.Outcome.CANCELLED, created_at=now - dt.timedelta(days=40)
    )
    return campaign


def test_the_overview_says_in_words_what_the_calls_saved(client, manager_user, last_month, store):
    Store.objects.filter(pk=store.pk).update(return_cost=Decimal("450.00"))
    client.force_login(manager_user)

    page = words_of(client.get(reverse("overview")))

    assert (
        "Last 30 days: 3 returns avoided, Rs 1,300.50 saved after Rs 49.50 of calls." in page
    )  # 3 x 450.00 - 9 x 5.50
    assert "Shipped 5, delivered 3, returned 1: a return rate of 25.0%." in page
    assert "if every cancelled order would have come back" in page


def test_the_overview_says_when_the_calls_cost_more_than_the_returns_they_avoided(
    client, manager_user, last_month, store
):
    Store.objects.filter(pk=store.pk).update(return_cost=Decimal("10.00"))
    client.force_login(manager_user)

    page = words_of(client.get(reverse("overview")))

    assert (
        "Last 30 days: 3 returns avoided, worth Rs 30.00, and Rs 49.50 of calls: "
        "Rs 19.50 more spent than saved." in page
    )


def test_without_a_return_cost_the_overview_counts_and_sends_the_admin_to_settings(
    client, admin_user, agent_user, last_month
):
    client.force_login(admin_user)

    page = words_of(client.get(reverse("overview")))

    assert "Last 30 days: 3 orders cancelled before shipping, and Rs 49.50 of calls." in page
    assert "in Settings to see the money the calls saved" in page
    assert f'<a href="{reverse("settings")}">Settings</a>' in text_of(
        client.get(reverse("overview"))
    )
    assert "saved after" not in page

    client.force_login(agent_user)
    assert "An admin can set what one returned parcel costs" in words_of(
        client.get(reverse("overview"))
    )


def test_before_anything_shipped_the_overview_says_so(client, manager_user, campaign):
    add_calls(campaign, 2, outcome=Call.Outcome.CONFIRMED, charges="5.50")
    client.force_login(manager_user)

    page = words_of(client.get(reverse("overview")))

    assert "Last 30 days: no parcel is known to have shipped yet" in page


def test_the_overview_renders_in_urdu_with_parcels(client, admin_user, last_month, store):
    Store.objects.filter(pk=store.pk).update(return_cost=Decimal("450.00"))
    admin_user.language = "ur"
    admin_user.save()
    client.force_login(admin_user)

    response = client.get(reverse("overview"))

    assert response.status_code == 200
    assert 'id="returns-title"' in response.content.decode()
