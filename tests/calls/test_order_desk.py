"""Every order ends with a decision, with a verdict the shop was told, or in front of a person:
the follow-up lives on the order, the store's rule after the last attempt, and decisions that
may be changed by hand, each change an event of the order."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from calls import actions
from calls.intake.single import create_single_call
from calls.models import Call, Campaign, Order, OrderEvent, Store, User
from calls.signals import order_settled
from calls.transitions import (
    TransitionRefused,
    decide_by_hand,
    finish,
    reject_at_intake,
    whose_decision,
)
from tests.support.orders import create_call

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign(store: Store) -> Campaign:
    return Campaign.objects.create(store=store, name="Eid sale")


@pytest.fixture
def settled() -> Any:
    """The orders `order_settled` was sent for, in order (the shops app's outbox listens)."""
    sent: list[int] = []

    def receiver(sender: Any, order_id: int, **kwargs: Any) -> None:
        sent.append(order_id)

    order_settled.connect(receiver, weak=False)
    yield sent
    order_settled.disconnect(receiver)


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


def end(call: Call, outcome: str) -> Order:
    """What polling does when the provider reports the call final; the order as it is then."""
    with transaction.atomic():
        locked = Call.objects.select_for_update().get(pk=call.pk)
        finish(locked, outcome, timezone.now())
    return Order.objects.get(pk=call.shop_order_id)


def queued(order: Order) -> list[int]:
    return list(actions.due_followups().filter(pk=order.pk).values_list("pk", flat=True))


@pytest.mark.parametrize(
    ("outcome", "reason"),
    [
        (Call.Outcome.NO_INPUT, Order.FollowUp.NO_INPUT),
        (Call.Outcome.UNREACHABLE, Order.FollowUp.UNREACHABLE),
        (Call.Outcome.CALLBACK_REQUESTED, Order.FollowUp.CALLBACK_REQUESTED),
        (Call.Outcome.NEEDS_REVIEW, Order.FollowUp.NEEDS_REVIEW),
        (Call.Outcome.FAILED, Order.FollowUp.REJECTED),
    ],
)
def test_an_order_left_without_a_decision_is_put_in_front_of_a_person(
    campaign: Campaign, outcome: str, reason: str
) -> None:
    call = in_progress(campaign)
    order = end(call, outcome)

    assert (order.followup, order.decision) == (reason, "")
    assert queued(order) == [order.pk]
    opened = order.events.get(kind=OrderEvent.Kind.FOLLOWUP_OPENED)
    assert opened.data == {"reason": reason, "call": call.pk}


def test_an_answered_call_without_a_key_is_queued_only_after_the_last_re_attempt(
    campaign: Campaign,
) -> None:
    campaign.store.reattempts = 1
    campaign.store.save()
    first = in_progress(campaign)
    order = end(first, Call.Outcome.NO_INPUT)
    assert order.followup == "" and order.status == Order.Status.WAITING  # called again

    again = Call.objects.get(shop_order=order, reattempt=1)
    Call.objects.filter(pk=again.pk).update(state=Call.State.IN_PROGRESS)
    order = end(again, Call.Outcome.NO_INPUT)
    assert order.followup == Order.FollowUp.NO_INPUT


def test_the_stores_rule_can_cancel_an_order_nobody_answered_and_tell_the_shop(
    campaign: Campaign, settled: list[int]
) -> None:
    campaign.store.after_last_attempt = Store.AfterLastAttempt.CANCEL
    campaign.store.save()
    order = end(in_progress(campaign), Call.Outcome.UNREACHABLE)

    assert (order.status, order.decision, order.decided_via, order.decided_by) == (
        Order.Status.CANCELLED,
        Order.Decision.CANCELLED,
        Order.DecidedVia.POLICY,
        None,
    )
    assert order.followup == "" and order.decider == "policy"
    decided = order.events.get(kind=OrderEvent.Kind.DECIDED)
    assert decided.data == {"decision": "cancelled", "via": "policy", "attempts": 1}
    assert settled == [order.pk]
    # A callback request is a customer asking for a person, never cancelled by the rule.
    asked = end(in_progress(campaign, "KK-2"), Call.Outcome.CALLBACK_REQUESTED)
    assert (asked.decision, asked.followup) == ("", Order.FollowUp.CALLBACK_REQUESTED)


def test_a_key_press_takes_the_order_out_of_the_queue_naming_the_call(
    campaign: Campaign, agent_user: User
) -> None:
    order = end(in_progress(campaign), Call.Outcome.CALLBACK_REQUESTED)
    assert actions.claim(order, agent_user)
    again = actions.call_again(order, agent_user)
    Call.objects.filter(pk=again.pk).update(state=Call.State.IN_PROGRESS)
    assert Order.objects.get(pk=order.pk).followup  # still theirs while the call is out

    order = end(again, Call.Outcome.CONFIRMED)

    assert (order.followup, order.claimed_by, order.decided_via) == ("", None, "key")
    closed = order.events.get(kind=OrderEvent.Kind.FOLLOWUP_CLOSED)
    assert closed.data == {"call": again.pk, "why": "confirmed"}


def test_changing_a_decision_names_whose_it_overrides_and_needs_the_decision_seen(
    campaign: Campaign, agent_user: User, admin_user: User, settled: list[int]
) -> None:
    order = end(in_progress(campaign), Call.Outcome.CONFIRMED)
    assert whose_decision(order) == "the customer's key press (confirmed)"
    with pytest.raises(TransitionRefused, match="decided meanwhile"):
        decide_by_hand(order, agent_user, "cancelled", "customer called", replaces="")

    decide_by_hand(order, agent_user, "cancelled", "customer called", replaces="confirmed")
    order = decide_by_hand(order, admin_user, "confirmed", "called back", replaces="cancelled")

    assert (order.decision, order.decided_via, order.decided_by) == (
        "confirmed",
        "agent",
        admin_user,
    )
    changes = [e.data for e in order.events.filter(kind=OrderEvent.Kind.DECIDED)]
    assert changes == [
        {
            "decision": "cancelled",
            "note": "customer called",
            "previous": "confirmed",
            "previous_via": "key",
        },
        {
            "decision": "confirmed",
            "note": "called back",
            "previous": "cancelled",
            "previous_via": "agent",
            "previous_by": "bilal",
        },
    ]
    assert settled == [order.pk, order.pk, order.pk]  # the key press, then each change
    # The figures count the latest decision once, on the order's latest final call.
    assert list(Call.objects.filter(shop_order=order).values_list("hand_decision", flat=True)) == [
        "confirmed"
    ]


def test_a_decision_by_the_stores_rule_gives_way_to_a_later_key_press(
    campaign: Campaign, agent_user: User
) -> None:
    campaign.store.after_last_attempt = Store.AfterLastAttempt.CANCEL
    campaign.store.save()
    order = end(in_progress(campaign), Call.Outcome.NO_INPUT)
    again = actions.call_again(order, agent_user)  # a policy decision does not stop a person
    Call.objects.filter(pk=again.pk).update(state=Call.State.IN_PROGRESS)

    order = end(again, Call.Outcome.CONFIRMED)

    assert (order.decision, order.decided_via, order.status) == ("confirmed", "key", "confirmed")


def test_an_order_rejected_at_intake_waits_for_a_person_who_can_call_it(
    campaign: Campaign, agent_user: User
) -> None:
    order = reject_at_intake(
        Order(
            store=campaign.store,
            campaign=campaign,
            order_id="#1001",
            phone="923001234567",
            amount=Decimal(900),
            voice_id=102,
            source=Order.Source.SHOPIFY,
        ),
        "not a mobile",
    )
    assert queued(order) == [order.pk]

    first = actions.call_again(order, agent_user)

    assert first.parent is None and first.shop_order_id == order.pk
    assert Order.objects.get(pk=order.pk).status == Order.Status.WAITING


def test_mark_handled_and_claims_work_on_the_order(
    campaign: Campaign, agent_user: User, admin_user: User
) -> None:
    order = end(in_progress(campaign), Call.Outcome.UNREACHABLE)
    assert actions.claim(order, agent_user)
    assert not actions.claim(order, admin_user)
    with pytest.raises(actions.ActionRefused, match="bilal holds this follow-up"):
        actions.mark_handled(order, admin_user, "")
    assert actions.take_over(order, admin_user)

    assert actions.mark_handled(order, admin_user, " will call the shop ")

    order.refresh_from_db()
    assert (order.followup, order.claimed_by) == ("", None)
    kinds = list(order.events.values_list("kind", "data"))
    assert kinds[-3:] == [
        ("claimed", {}),
        ("taken_over", {"previous": "bilal"}),
        ("handled", {"note": "will call the shop"}),
    ]
    assert not actions.mark_handled(order, admin_user, "twice")


def test_a_callback_time_an_agent_set_hides_the_order_until_then_and_comes_first(
    campaign: Campaign,
) -> None:
    older = end(in_progress(campaign, "KK-1"), Call.Outcome.UNREACHABLE)
    asked = end(in_progress(campaign, "KK-2"), Call.Outcome.CALLBACK_REQUESTED)
    now = timezone.now()
    Order.objects.filter(pk=older.pk).update(followup_at=now - dt.timedelta(hours=2))
    Order.objects.filter(pk=asked.pk).update(
        followup_at=now + dt.timedelta(minutes=30), callback_set=True
    )
    assert list(actions.due_followups().values_list("pk", flat=True)) == [older.pk]

    Order.objects.filter(pk=asked.pk).update(followup_at=now - dt.timedelta(minutes=1))

    assert list(actions.due_followups().values_list("pk", flat=True)) == [asked.pk, older.pk]


def test_a_single_order_form_order_follows_the_same_path(campaign: Campaign) -> None:
    call = create_single_call(
        campaign, phone="03001234567", amount=Decimal(1500), order_id="KK-9", store_name="S"
    ).calls.get()
    Call.objects.filter(pk=call.pk).update(state=Call.State.IN_PROGRESS)
    order = end(call, Call.Outcome.NO_INPUT)
    assert order.followup == Order.FollowUp.NO_INPUT
