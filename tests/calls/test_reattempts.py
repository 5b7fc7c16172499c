"""The store's re-attempt policy: an order left unreachable or unanswered after the provider's
free retries is called again — up to N times, at least M minutes apart, inside calling hours,
never for a withdrawn or decided order."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from calls import actions
from calls.models import Call, CallEvent, Campaign, Order, Store, User
from calls.transitions import finish
from tests.support.orders import create_call

pytestmark = pytest.mark.django_db

KARACHI_EVENING = dt.datetime(2026, 5, 4, 15, 50, tzinfo=dt.UTC)  # 20:50 in Asia/Karachi


@pytest.fixture
def campaign(store: Store) -> Campaign:
    store.reattempts, store.reattempt_gap_minutes = 2, 30
    store.save()
    return Campaign.objects.create(store=store, name="Eid sale")


def in_progress(campaign: Campaign, order_id: str = "KK-1") -> Call:
    return create_call(
        store=campaign.store,
        campaign=campaign,
        order_id=order_id,
        phone="923001234567",
        amount=Decimal("1500.00"),
        voice_id=102,
        state=Call.State.IN_PROGRESS,
        provider_call_id=f"p-{order_id}",
    )


def end(call: Call, outcome: str, now: dt.datetime | None = None) -> None:
    """What polling does when the provider reports the call final."""
    with transaction.atomic():
        locked = Call.objects.select_for_update().get(pk=call.pk)
        finish(locked, outcome, now or timezone.now())


def send(call: Call) -> None:
    """The dispatcher's part, short-circuited: the queued re-attempt is placed."""
    Call.objects.filter(pk=call.pk).update(state=Call.State.IN_PROGRESS)


def test_the_policy_is_off_by_default(store: Store) -> None:
    campaign = Campaign.objects.create(store=store, name="Plain")
    assert store.reattempts == 0
    call = in_progress(campaign)
    end(call, Call.Outcome.UNREACHABLE)
    assert Call.objects.count() == 1


@pytest.mark.parametrize("outcome", [Call.Outcome.UNREACHABLE, Call.Outcome.NO_INPUT])
def test_an_unanswered_order_is_called_again_at_most_n_times_m_minutes_apart(
    campaign: Campaign, outcome: str
) -> None:
    call = in_progress(campaign)
    order = call.shop_order
    for n in (1, 2):
        before = timezone.now()
        end(call, outcome)
        call = order.calls.order_by("-id").first()
        assert (call.state, call.reattempt) == (Call.State.QUEUED, n)
        assert call.scheduled_for >= before + dt.timedelta(minutes=30)
        created = call.events.get(kind=CallEvent.Kind.CREATED)
        assert (created.data["reattempt"], created.data["of"]) == (n, 2)
        send(call)

    end(call, outcome)  # the second re-attempt ends unanswered too: the policy is used up

    assert order.calls.count() == 3
    assert not order.calls.filter(state=Call.State.QUEUED).exists()
    order.refresh_from_db()
    assert order.status == outcome


def test_a_re_attempt_waits_for_the_next_calling_hours(campaign: Campaign) -> None:
    store = campaign.store
    store.calling_start, store.calling_end = dt.time(9, 0), dt.time(21, 0)
    store.save()
    call = in_progress(campaign)

    end(call, Call.Outcome.UNREACHABLE, now=KARACHI_EVENING)

    again = Call.objects.get(reattempt=1)
    assert store.in_calling_hours(again.scheduled_for)
    assert again.scheduled_for == dt.datetime(2026, 5, 5, 4, 0, tzinfo=dt.UTC)  # 09:00 local


def test_no_re_attempt_for_a_decided_or_withdrawn_order(
    campaign: Campaign, agent_user: User
) -> None:
    decided = in_progress(campaign, "KK-DECIDED")
    Order.objects.filter(pk=decided.shop_order_id).update(
        decision=Order.Decision.CONFIRMED,
        decided_via=Order.DecidedVia.AGENT,
        decided_at=timezone.now(),
        decided_by=agent_user,
    )
    end(decided, Call.Outcome.UNREACHABLE)
    assert decided.shop_order.calls.count() == 1

    withdrawn = in_progress(campaign, "KK-WITHDRAWN")
    end(withdrawn, Call.Outcome.UNREACHABLE)
    reattempt = Call.objects.get(shop_order=withdrawn.shop_order, reattempt=1)
    assert actions.withdraw(reattempt, agent_user)
    assert Order.objects.get(pk=withdrawn.shop_order_id).status == Order.Status.WITHDRAWN
    assert withdrawn.shop_order.calls.count() == 2


def test_a_person_calling_again_first_means_no_re_attempt(
    campaign: Campaign, agent_user: User
) -> None:
    call = in_progress(campaign)
    end(call, Call.Outcome.CALLBACK_REQUESTED)  # not unanswered: no policy
    assert call.shop_order.calls.count() == 1
    again = actions.call_again(call.shop_order, agent_user)
    assert again.reattempt == 0


def test_re_attempts_show_on_the_order_page_and_settings(
    client: Client, campaign: Campaign, admin_user: User
) -> None:
    call = in_progress(campaign)
    end(call, Call.Outcome.UNREACHABLE)
    client.force_login(admin_user)

    page = client.get(reverse("order_detail", args=[call.shop_order_id])).content.decode()
    settings_page = client.get(reverse("settings")).content.decode()
    form = client.get(reverse("store_edit", args=[campaign.store_id])).content.decode()

    assert "2 calls" in page and "re-attempt" in page
    assert "then up to 2 re-attempts, 30 min apart" in settings_page
    assert 'name="reattempts"' in form and 'name="reattempt_gap_minutes"' in form
