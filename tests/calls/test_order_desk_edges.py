"""The order desk at its edges, each found by review: a shop told "no answer" after a call again
in between, a withdrawal by the shop, another agent's claim, a number that cannot be called, a
policy decision left unanswered again, a late acceptance on a decided order, hostile input."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from calls import actions, order_batches
from calls.models import Call, Campaign, Order, OrderEvent, Store, User
from calls.pipeline import dispatch, timing
from calls.transitions import TransitionRefused, decide_by_hand, finish, reject_at_intake, withdraw
from shops import outbox
from shops.models import ShopConnection, WriteBack
from tests.support.orders import create_call
from tests.support.pages import text_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign(store: Store) -> Campaign:
    return Campaign.objects.create(store=store, name="Eid sale")


def in_progress(campaign: Campaign, order_id: str = "KK-1", **fields: object) -> Call:
    return create_call(
        store=campaign.store,
        campaign=campaign,
        order_id=order_id,
        phone="923001234567",
        amount=Decimal(900),
        voice_id=102,
        state=Call.State.IN_PROGRESS,
        **fields,
    )


def end(call: Call, outcome: str) -> Order:
    with transaction.atomic():
        finish(Call.objects.select_for_update().get(pk=call.pk), outcome, timezone.now())
    return Order.objects.get(pk=call.shop_order_id)


def test_no_answer_is_told_even_when_a_call_again_came_between_queueing_and_sending(
    campaign: Campaign, agent_user: User
) -> None:
    hook = ShopConnection(store=campaign.store, kind=ShopConnection.Kind.WEBHOOK)
    hook.webhook_url = "https://hooks.example.com/robodash"
    hook.set_secrets(signing_secret="whsec")
    hook.save()
    order = end(in_progress(campaign), Call.Outcome.UNREACHABLE)
    again = actions.call_again(order, agent_user)  # undecided, calling, when the row is sent
    [claimed] = outbox.claim()
    outbox.deliver(claimed)  # nothing to tell while undecided: no request is made
    assert WriteBack.objects.get().told_event == ""

    Call.objects.filter(pk=again.pk).update(state=Call.State.IN_PROGRESS)
    end(again, Call.Outcome.UNREACHABLE)

    row = WriteBack.objects.get()
    assert (row.state, row.event) == (WriteBack.State.PENDING, WriteBack.Event.NO_ANSWER)


def test_the_shop_withdrawing_the_call_takes_the_order_out_of_the_queue_a_person_does_not(
    campaign: Campaign, agent_user: User
) -> None:
    first = end(in_progress(campaign, "KK-1"), Call.Outcome.CALLBACK_REQUESTED)
    second = end(in_progress(campaign, "KK-2"), Call.Outcome.CALLBACK_REQUESTED)
    by_shop = actions.call_again(first, agent_user)
    by_person = actions.call_again(second, agent_user)

    assert withdraw(by_shop, None) and withdraw(by_person, agent_user)

    first.refresh_from_db()
    second.refresh_from_db()
    assert first.followup == "" and first.status == Order.Status.WITHDRAWN
    assert first.events.filter(kind=OrderEvent.Kind.FOLLOWUP_CLOSED, data__why="withdrawn")
    assert second.followup == Order.FollowUp.CALLBACK_REQUESTED  # still a person's to work


def test_a_decision_waits_for_the_agent_who_holds_the_order(
    campaign: Campaign, agent_user: User, admin_user: User
) -> None:
    order = end(in_progress(campaign), Call.Outcome.UNREACHABLE)
    assert actions.claim(order, agent_user)

    with pytest.raises(TransitionRefused, match="bilal holds this follow-up; take it over"):
        decide_by_hand(order, admin_user, "cancelled", "")
    batch = order_batches.start_batch(admin_user, "cancel", [order.pk])
    assert batch.skipped == {"held": 1}

    assert actions.take_over(order, admin_user)
    assert decide_by_hand(order, admin_user, "cancelled", "").decision == "cancelled"


def test_an_order_with_a_number_that_cannot_be_called_is_not_called_until_corrected(
    campaign: Campaign, agent_user: User
) -> None:
    order = reject_at_intake(
        Order(
            store=campaign.store,
            campaign=campaign,
            order_id="#1001",
            phone="12345",
            amount=Decimal(900),
            voice_id=102,
            source=Order.Source.SHOPIFY,
        ),
        "not a mobile",
    )
    with pytest.raises(actions.ActionRefused, match="correct the order's phone first"):
        actions.call_again(order, agent_user)
    assert order_batches.start_batch(agent_user, "call_again", [order.pk]).skipped == {
        "bad_phone": 1
    }

    actions.change_phone(order, agent_user, "0300 1234567")
    assert actions.call_again(order, agent_user).phone == "923001234567"


def test_an_order_the_stores_rule_cancelled_stays_cancelled_when_called_again_unanswered(
    campaign: Campaign, agent_user: User
) -> None:
    campaign.store.after_last_attempt = Store.AfterLastAttempt.CANCEL
    campaign.store.save()
    order = end(in_progress(campaign), Call.Outcome.NO_INPUT)
    again = actions.call_again(order, agent_user)
    Call.objects.filter(pk=again.pk).update(state=Call.State.IN_PROGRESS)

    order = end(again, Call.Outcome.UNREACHABLE)

    assert (order.decision, order.decided_via, order.followup) == ("cancelled", "policy", "")


def test_a_late_acceptance_of_a_call_again_on_a_decided_order_is_followed(
    campaign: Campaign, agent_user: User
) -> None:
    campaign.store.calling_start = campaign.store.calling_end = dt.time(0, 0)
    campaign.store.save()
    order = end(in_progress(campaign), Call.Outcome.CONFIRMED)
    again = actions.call_again(order, agent_user)
    claimed = dispatch._claim_for_sending(again.id, timezone.now())
    assert claimed is not None
    dispatch.expire_sending_leases(
        timezone.now() + timing.sending_lease() + dt.timedelta(seconds=1)
    )
    assert Call.objects.get(pk=again.pk).outcome == Call.Outcome.NEEDS_REVIEW

    dispatch._mark_sent(claimed, "888002")

    again.refresh_from_db()
    assert again.state == Call.State.IN_PROGRESS and again.provider_call_id == "888002"


def test_a_bulk_note_over_the_limit_is_refused_before_any_order_is_touched(
    campaign: Campaign, agent_user: User
) -> None:
    order = end(in_progress(campaign), Call.Outcome.NO_INPUT)
    with pytest.raises(order_batches.BatchRefused, match="keep it under 2000"):
        order_batches.start_batch(agent_user, "cancel", [order.pk], note="x" * 2001)
    assert Order.objects.get(pk=order.pk).decision == ""


def test_hostile_bulk_and_callback_input_gets_a_message_not_a_500(
    client: Client, agent_user: User, campaign: Campaign
) -> None:
    order = end(in_progress(campaign), Call.Outcome.CALLBACK_REQUESTED)
    client.force_login(agent_user)

    assert client.get(reverse("order_list"), {"range": "today", "store": "²"}).status_code == 200
    ticked = client.post(
        reverse("order_bulk"), {"scope": "selected", "order": ["²"], "action": "cancel"}
    )
    assert ticked.status_code == 302
    header = client.post(
        reverse("order_bulk"),
        {"scope": "selected", "order": [10**12], "action": "cancel", "filters": "a=1\r\nX: y"},
    )
    assert header.status_code == 302 and "\n" not in header["Location"]
    widened = client.post(
        reverse("order_bulk"),
        {"scope": "filter", "action": "cancel", "filters": "date_from=9999-12-31"},
        follow=True,
    )
    assert "Nothing was changed: the filter has an error (From)" in text_of(widened)
    assert Order.objects.get(pk=order.pk).decision == ""
    edge = client.post(
        reverse("followup_callback", args=[order.pk]), {"callback_at": "0001-01-01T00:00+14:00"}
    )
    assert edge.status_code in (200, 302)
