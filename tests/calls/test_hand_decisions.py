"""Decisions by hand in the figures: an agent's decision stands in for the key press of the call
it followed up, in every rate, live and rolled up alike."""

from __future__ import annotations

from decimal import Decimal

import pytest

from calls.figures import stats
from calls.models import Call, Campaign, Order
from calls.transitions import decide_by_hand
from tests.calls.test_counters import days_ago
from tests.calls.test_stats import add_calls
from tests.support.migrations import latest, migrate_to

pytestmark = pytest.mark.django_db
Outcome = Call.Outcome


@pytest.fixture
def campaign(store) -> Campaign:
    return Campaign.objects.create(store=store, name="Eid sale")


def test_with_no_decision_by_hand_the_rates_are_key_presses_over_answered_calls(campaign):
    add_calls(campaign, 3, outcome=Outcome.CONFIRMED, charges="11.00")
    add_calls(campaign, 1, outcome=Outcome.CANCELLED, charges="5.50")
    add_calls(campaign, 4, outcome=Outcome.UNREACHABLE)

    figures = stats.figures_of(Call.objects.all())

    assert (figures.decided_confirmed, figures.decided_cancelled) == (3, 1)
    assert figures.decided_or_answered == figures.answered == 4
    assert figures.confirmation_rate == Decimal("75.0")
    assert figures.cancel_rate == Decimal("25.0")
    assert figures.cost_per_confirmed == Decimal("12.83")  # 38.50 / 3


def test_decisions_by_hand_count_in_the_rates_and_once_each(campaign, agent_user):
    add_calls(campaign, 1, outcome=Outcome.CONFIRMED)
    [callback] = add_calls(campaign, 1, outcome=Outcome.CALLBACK_REQUESTED)
    [unreachable] = add_calls(campaign, 1, outcome=Outcome.UNREACHABLE)
    [pressed_1] = add_calls(campaign, 1, outcome=Outcome.CONFIRMED)
    add_calls(campaign, 1, outcome=Outcome.NO_INPUT)

    # An answered call (pressed 3), an unanswered one, and a key press the customer took back.
    decide_by_hand(callback.shop_order, agent_user, Order.Decision.CONFIRMED, "called back")
    decide_by_hand(unreachable.shop_order, agent_user, Order.Decision.CANCELLED, "on WhatsApp")
    decide_by_hand(pressed_1.shop_order, agent_user, Order.Decision.CANCELLED, "rang to cancel")
    figures = stats.figures_of(Call.objects.all())

    assert figures.confirmed == 2 and figures.cancelled == 0  # the key presses, unchanged
    assert figures.decided_by_hand == 3
    assert figures.decided_unanswered == 1  # the unreachable call joins the denominator
    assert figures.decided_or_answered == 5  # 4 answered + 1 decided unanswered
    assert (figures.decided_confirmed, figures.decided_cancelled) == (2, 2)
    assert figures.confirmation_rate == Decimal("40.0")
    assert figures.cancel_rate == Decimal("40.0")
    assert Call.objects.get(pk=unreachable.pk).hand_decision == Order.Decision.CANCELLED


def test_a_decision_by_hand_on_an_old_day_changes_that_days_figures_at_once(campaign, agent_user):
    [callback] = add_calls(campaign, 1, outcome=Outcome.CALLBACK_REQUESTED, created_at=days_ago(5))
    add_calls(campaign, 1, outcome=Outcome.CONFIRMED, created_at=days_ago(5))
    day = days_ago(5).date()
    before = stats.figures_total(first_day=day, last_day=day)
    assert before.confirmation_rate == Decimal("50.0")

    decide_by_hand(callback.shop_order, agent_user, Order.Decision.CONFIRMED, "")

    after = stats.figures_total(first_day=day, last_day=day)
    assert after.confirmation_rate == Decimal("100.0") and after.decided_by_hand == 1
    assert after == stats.figures_of(Call.objects.filter(created_at__date=day))


def test_the_reports_page_and_its_export_show_decisions_by_hand(
    client, admin_user, campaign, agent_user
):
    [callback] = add_calls(campaign, 1, outcome=Outcome.CALLBACK_REQUESTED)
    decide_by_hand(callback.shop_order, agent_user, Order.Decision.CONFIRMED, "")
    client.force_login(admin_user)

    page = client.get("/reports/?group=campaign")
    export = client.get("/reports/export.csv?group=campaign")

    assert page.status_code == 200 and "<dt>Decided by hand</dt><dd>1</dd>" in page.content.decode()
    rows = export.content.decode().lstrip("\ufeff").splitlines()
    header, first = rows[0].split(","), rows[1].split(",")
    assert first[header.index("decided_by_hand")] == "1"
    assert first[header.index("confirmation_rate_pct")] == "100.0"


def test_the_migration_gives_rolled_up_days_their_decided_counts(past_database):
    apps = migrate_to([("calls", "0008_reattempt_policy")])
    store = apps.get_model("calls", "Store").objects.create(name="KK", api_key_encrypted="x")
    campaign = apps.get_model("calls", "Campaign").objects.create(store=store, name="Old")
    day = days_ago(9).date()
    apps.get_model("calls", "RolledUpDay").objects.create(day=day, zone="Asia/Karachi")
    apps.get_model("calls", "DailyFigures").objects.create(
        day=day, campaign_id=campaign.pk, store_id=store.pk, voice_id=102, calls=6,
        finished=6, confirmed=3, cancelled=1, no_input=2,
    )  # fmt: skip

    apps = migrate_to([("calls", "0009_hand_decisions_in_figures")])

    row = apps.get_model("calls", "DailyFigures").objects.get(day=day)
    assert (row.decided_confirmed, row.decided_cancelled) == (3, 1)
    migrate_to(latest())  # and on to the latest, where the figures are checked after every test
