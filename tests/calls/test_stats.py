"""The figures and rates of calls/figures/stats.py, against hand-counted calls in Postgres."""

import datetime as dt
import itertools
import zoneinfo
from decimal import Decimal

import pytest
from django.utils import timezone

from calls.figures import stats
from calls.figures.stats import Figures, rate
from calls.models import Call, Campaign
from tests.support.orders import with_orders

KARACHI = zoneinfo.ZoneInfo("Asia/Karachi")
_order_numbers = itertools.count(1)
NOT_SENT = (Call.Outcome.WITHDRAWN, Call.Outcome.FAILED)


def add_calls(
    campaign: Campaign,
    n: int,
    *,
    outcome: str = "",
    state: str = "",
    charges: str | None = None,
    created_at: dt.datetime | None = None,
    voice_id: int = 102,
) -> list[Call]:
    """`n` calls of `campaign` in one INSERT: final with `outcome`, or in `state` (queued)."""
    created = created_at or timezone.now()
    state = state or (Call.State.FINAL if outcome else Call.State.QUEUED)
    sent = state in (Call.State.IN_PROGRESS, Call.State.FINAL) and outcome not in NOT_SENT
    calls = [
        Call(
            store=campaign.store,
            campaign=campaign,
            order_id=f"ORD-{next(_order_numbers)}",
            phone="923001234567",
            amount=Decimal("1500.00"),
            voice_id=voice_id,
            state=state,
            outcome=outcome,
            call_charges=Decimal(charges) if charges is not None else None,
            created_at=created,
            sent_at=created if sent else None,
            finalized_at=created if state == Call.State.FINAL else None,
        )
        for _ in range(n)
    ]
    return Call.objects.bulk_create(with_orders(calls))


@pytest.fixture
def campaign(store) -> Campaign:
    return Campaign.objects.create(store=store, name="May orders")


@pytest.fixture
def hand_counted(campaign) -> Campaign:
    """3 confirmed, 2 cancelled, 1 callback, 2 no input (8 answered); 3 unreachable, 1 failed,
    1 needs review, 2 withdrawn; 1 queued and 1 in progress. Charges Rs 51.30 in all."""
    add_calls(campaign, 3, outcome=Call.Outcome.CONFIRMED, charges="11.00")
    add_calls(campaign, 2, outcome=Call.Outcome.CANCELLED, charges="5.50")
    add_calls(campaign, 1, outcome=Call.Outcome.CALLBACK_REQUESTED, charges="5.50")
    add_calls(campaign, 2, outcome=Call.Outcome.NO_INPUT, charges="0.90")
    add_calls(campaign, 3, outcome=Call.Outcome.UNREACHABLE, charges="0.00")
    add_calls(campaign, 1, outcome=Call.Outcome.FAILED)
    add_calls(campaign, 1, outcome=Call.Outcome.NEEDS_REVIEW)
    add_calls(campaign, 2, outcome=Call.Outcome.WITHDRAWN)
    add_calls(campaign, 1, state=Call.State.QUEUED)
    add_calls(campaign, 1, state=Call.State.IN_PROGRESS)
    return campaign


def test_every_count_matches_the_hand_counted_calls(hand_counted):
    f = stats.figures_of(hand_counted.calls.all())

    assert f.calls == 17
    assert (f.confirmed, f.cancelled, f.callback_requested, f.no_input) == (3, 2, 1, 2)
    assert (f.unreachable, f.failed, f.needs_review, f.withdrawn) == (3, 1, 1, 2)
    assert (f.queued, f.in_flight, f.finished, f.pending) == (1, 1, 15, 2)
    assert f.answered == 8
    assert f.placed == 3 + 2 + 1 + 2 + 3 + 1 + 1  # sent: not the withdrawn, failed or waiting
    assert f.charges == Decimal("51.30")


def test_answer_rate_is_answered_over_final_calls_without_the_withdrawn(hand_counted):
    f = stats.figures_of(hand_counted.calls.all())

    assert f.rated_finals == 13  # 15 final, 2 of them withdrawn
    assert f.answer_rate == Decimal("61.5")  # 8 / 13


def test_confirmation_and_cancel_rates_are_shares_of_the_answered_calls(hand_counted):
    f = stats.figures_of(hand_counted.calls.all())

    assert f.confirmation_rate == Decimal("37.5")  # 3 / 8
    assert f.cancel_rate == Decimal("25.0")  # 2 / 8


def test_cost_per_confirmed_order_spreads_all_charges_over_the_confirmed(hand_counted):
    f = stats.figures_of(hand_counted.calls.all())

    assert f.cost_per_confirmed == Decimal("17.10")  # 51.30 / 3


def test_no_calls_give_no_rates_rather_than_a_division_by_zero(campaign):
    f = stats.figures_of(campaign.calls.all())

    assert f == Figures()
    assert f.answer_rate is None
    assert f.confirmation_rate is None
    assert f.cancel_rate is None
    assert f.cost_per_confirmed is None
    assert f.progress_percent == 0


def test_calls_never_answered_give_a_zero_answer_rate_and_no_confirmation_rate(campaign):
    add_calls(campaign, 4, outcome=Call.Outcome.UNREACHABLE, charges="1.00")

    f = stats.figures_of(campaign.calls.all())

    assert f.answer_rate == Decimal("0.0")
    assert f.confirmation_rate is None
    assert f.cost_per_confirmed is None
    assert f.charges == Decimal("4.00")


def test_only_withdrawn_calls_leave_no_answer_rate(campaign):
    add_calls(campaign, 2, outcome=Call.Outcome.WITHDRAWN)

    assert stats.figures_of(campaign.calls.all()).answer_rate is None


def test_rates_round_half_up_to_one_decimal():
    assert rate(1, 8) == Decimal("12.5")
    assert rate(2, 3) == Decimal("66.7")
    assert rate(1, 3) == Decimal("33.3")
    assert rate(1, 16) == Decimal("6.3")  # 6.25
    assert rate(5, 0) is None


def test_figures_add_up_field_by_field():
    a = Figures(calls=2, confirmed=1, finished=2, withdrawn=1, charges=Decimal("5.50"))
    b = Figures(calls=3, confirmed=2, finished=3, charges=Decimal("1.10"))

    total = Figures.total([a, b])

    assert total == Figures(calls=5, confirmed=3, finished=5, withdrawn=1, charges=Decimal("6.60"))


def test_days_are_karachi_days_and_empty_days_are_listed(campaign):
    # 20:30 UTC on 1 May is 01:30 on 2 May in Karachi (UTC+5).
    late_evening_utc = dt.datetime(2024, 5, 1, 20, 30, tzinfo=dt.UTC)
    add_calls(campaign, 2, outcome=Call.Outcome.CONFIRMED, created_at=late_evening_utc)
    add_calls(
        campaign,
        1,
        outcome=Call.Outcome.CANCELLED,
        created_at=dt.datetime(2024, 5, 1, 18, 0, tzinfo=dt.UTC),  # 23:00 on 1 May
    )

    days = stats.daily_figures(
        Call.objects.all(), dt.date(2024, 4, 30), dt.date(2024, 5, 3), KARACHI
    )

    assert [day for day, _ in days] == [
        dt.date(2024, 4, 30),
        dt.date(2024, 5, 1),
        dt.date(2024, 5, 2),
        dt.date(2024, 5, 3),
    ]
    assert [f.calls for _, f in days] == [0, 1, 2, 0]
    assert days[1][1].cancelled == 1
    assert days[2][1].confirmed == 2


def test_weeks_start_on_monday_in_karachi(campaign):
    # Sunday 5 May 2024, 23:30 in Karachi belongs to the week of Monday 29 April.
    add_calls(
        campaign,
        1,
        outcome=Call.Outcome.CONFIRMED,
        created_at=dt.datetime(2024, 5, 5, 18, 30, tzinfo=dt.UTC),
    )
    # Monday 6 May, 00:30 in Karachi starts the next week.
    add_calls(
        campaign,
        2,
        outcome=Call.Outcome.NO_INPUT,
        created_at=dt.datetime(2024, 5, 5, 19, 30, tzinfo=dt.UTC),
    )

    weeks = stats.weekly_figures(
        Call.objects.all(), dt.date(2024, 5, 1), dt.date(2024, 5, 14), KARACHI
    )

    assert [(monday, f.calls) for monday, f in weeks] == [
        (dt.date(2024, 4, 29), 1),
        (dt.date(2024, 5, 6), 2),
        (dt.date(2024, 5, 13), 0),
    ]


def test_calls_outside_the_range_are_not_counted(campaign):
    add_calls(
        campaign,
        1,
        outcome=Call.Outcome.CONFIRMED,
        created_at=dt.datetime(2024, 5, 1, 19, 0, tzinfo=dt.UTC),  # 2 May 00:00 Karachi
    )

    days = stats.daily_figures(
        Call.objects.all(), dt.date(2024, 4, 25), dt.date(2024, 5, 1), KARACHI
    )

    assert sum(f.calls for _, f in days) == 0


def test_figures_by_campaign_group_in_one_query(store, django_assert_num_queries):
    first = Campaign.objects.create(store=store, name="First")
    second = Campaign.objects.create(store=store, name="Second")
    add_calls(first, 2, outcome=Call.Outcome.CONFIRMED, charges="6.00")
    add_calls(second, 1, outcome=Call.Outcome.CANCELLED, charges="3.00")

    with django_assert_num_queries(1):
        by_campaign = stats.figures_by(Call.objects.all(), "campaign_id")

    assert by_campaign[first.pk].confirmed == 2
    assert by_campaign[first.pk].charges == Decimal("12.00")
    assert by_campaign[second.pk].cancel_rate == Decimal("100.0")


def test_calls_in_flight_count_waiting_and_sending_calls(campaign):
    add_calls(campaign, 2, state=Call.State.QUEUED)
    add_calls(campaign, 1, state=Call.State.SENDING)
    add_calls(campaign, 3, state=Call.State.IN_PROGRESS)
    add_calls(campaign, 4, outcome=Call.Outcome.CONFIRMED)

    assert stats.calls_in_flight() == {"queued": 2, "sending": 1, "in_progress": 3}
