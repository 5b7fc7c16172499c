"""What became of the parcel: which delivery update wins (one rule, a table), what recording one
does to the order, its follow-up and its decision, and the returns figures counted as orders
change."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.utils import timezone

from calls import transitions
from calls.figures import counters, stats
from calls.models import Call, Campaign, Order, OrderEvent, Store
from calls.transitions import DeliveryVerdict, delivery_update_wins, record_delivery
from tests.support.orders import create_call

D = Order.Delivery
V = DeliveryVerdict
T1 = dt.datetime(2026, 11, 1, 10, 0, tzinfo=dt.UTC)
EARLIER, LATER = T1 - dt.timedelta(hours=5), T1 + dt.timedelta(hours=5)

# (the order's delivery, an update saying, its time, by hand) -> the verdict
WHICH_UPDATE_WINS = [
    (D.NONE, D.SHIPPED, T1, False, V.APPLIED),
    (D.NONE, D.DELIVERED, T1, False, V.APPLIED),
    (D.NONE, D.RETURNED, T1, False, V.APPLIED),
    (D.SHIPPED, D.SHIPPED, LATER, False, V.REPEAT),
    (D.SHIPPED, D.DELIVERED, EARLIER, False, V.APPLIED),  # forward, whatever the clock says
    (D.SHIPPED, D.RETURNED, LATER, False, V.APPLIED),
    (D.DELIVERED, D.DELIVERED, LATER, False, V.REPEAT),
    (D.DELIVERED, D.SHIPPED, LATER, False, V.BACKWARDS),
    (D.RETURNED, D.SHIPPED, LATER, True, V.BACKWARDS),
    (D.DELIVERED, D.RETURNED, LATER, False, V.APPLIED),  # delivered, then sent back
    (D.DELIVERED, D.RETURNED, T1, False, V.NOT_LATER),
    (D.DELIVERED, D.RETURNED, EARLIER, False, V.NOT_LATER),
    (D.RETURNED, D.DELIVERED, LATER, False, V.APPLIED),
    (D.RETURNED, D.DELIVERED, EARLIER, False, V.NOT_LATER),
    (D.RETURNED, D.DELIVERED, EARLIER, True, V.APPLIED),  # a person who knows better
    (D.DELIVERED, D.RETURNED, EARLIER, True, V.APPLIED),
]


@pytest.mark.parametrize(("current", "update", "at", "by_hand", "verdict"), WHICH_UPDATE_WINS)
def test_which_delivery_update_wins(current, update, at, by_hand, verdict):
    current_at = T1 if current else None
    assert delivery_update_wins(current, current_at, update, at, by_hand=by_hand) == verdict


@pytest.fixture
def campaign(store: Store) -> Campaign:
    return Campaign.objects.create(store=store, name="Eid sale")


def an_order(campaign: Campaign, order_id: str, outcome: str = "", **fields: object) -> Order:
    now = timezone.now()
    call = create_call(
        store=campaign.store,
        campaign=campaign,
        order_id=order_id,
        phone="923001234567",
        amount=Decimal("2500.00"),
        voice_id=102,
        state=Call.State.FINAL if outcome else Call.State.QUEUED,
        outcome=outcome,
        sent_at=now if outcome else None,
        finalized_at=now if outcome else None,
        **fields,
    )
    return call.shop_order


def test_a_parcel_shipped_then_delivered_is_recorded_with_its_times_and_sources(campaign):
    order = an_order(campaign, "KK-1", Call.Outcome.CONFIRMED)

    assert record_delivery(order, D.SHIPPED, via="shopify", at=T1, tracking="LEO123") == V.APPLIED
    assert record_delivery(order, D.DELIVERED, via="sheet") == V.APPLIED

    order.refresh_from_db()
    assert (order.delivery, order.delivery_via, order.tracking) == (D.DELIVERED, "sheet", "LEO123")
    assert order.delivery_at == order.delivery_learnt_at  # a sheet's update: dated on receipt
    kinds = list(order.events.values_list("kind", "data__delivery", "data__previous"))
    assert kinds == [("delivery", "shipped", None), ("delivery", "delivered", "shipped")]


def test_a_repeat_changes_nothing_and_a_lost_update_is_noted_once(campaign):
    order = an_order(campaign, "KK-2", Call.Outcome.CONFIRMED)
    record_delivery(order, D.DELIVERED, via="api", at=T1)
    before = Order.objects.values().get(pk=order.pk)

    assert record_delivery(order, D.DELIVERED, via="api", at=LATER) == V.REPEAT
    assert record_delivery(order, D.SHIPPED, via="shopify", at=LATER) == V.BACKWARDS
    assert record_delivery(order, D.SHIPPED, via="shopify", at=LATER) == V.BACKWARDS
    assert record_delivery(order, D.RETURNED, via="api", at=EARLIER) == V.NOT_LATER

    assert Order.objects.values().get(pk=order.pk) == before
    ignored = order.events.filter(kind=OrderEvent.Kind.DELIVERY_IGNORED)
    assert sorted(ignored.values_list("data__delivery", "data__why")) == [
        ("returned", "not_later"),
        ("shipped", "backwards"),
    ]


def test_shipping_takes_the_order_out_of_the_queue_and_fixes_its_decision(campaign, agent_user):
    order = an_order(campaign, "KK-3", Call.Outcome.NO_INPUT)
    assert Order.objects.get(pk=order.pk).followup == Order.FollowUp.NO_INPUT

    record_delivery(order, D.SHIPPED, via="woocommerce", at=T1)

    order.refresh_from_db()
    assert order.followup == ""
    with pytest.raises(transitions.TransitionRefused, match="known to be shipped"):
        transitions.decide_by_hand(order, agent_user, Order.Decision.CANCELLED, "customer rang")


def test_a_person_may_mark_returned_a_parcel_the_courier_called_delivered(campaign, agent_user):
    order = an_order(campaign, "KK-4", Call.Outcome.CONFIRMED)
    record_delivery(order, D.DELIVERED, via="sheet", at=LATER)

    verdict = record_delivery(order, D.RETURNED, via="hand", at=T1, actor=agent_user)

    order.refresh_from_db()
    assert (verdict, order.delivery, order.delivery_via) == (V.APPLIED, D.RETURNED, "hand")
    assert order.events.filter(kind="delivery", actor=agent_user).exists()


def test_a_verification_call_reaching_the_provider_marks_its_order_called(campaign):
    order = an_order(campaign, "KK-5")
    call = order.calls.get()
    assert not Order.objects.get(pk=order.pk).called

    transitions.start_sending(call, timezone.now())
    transitions.mark_sent(call, "prov-1", timezone.now())

    assert Order.objects.get(pk=order.pk).called


def test_returns_figures_split_by_decision_and_price_the_cancelled_orders(campaign, store):
    store.return_cost = Decimal("400.00")
    store.save()
    confirmed = [an_order(campaign, f"C-{n}", Call.Outcome.CONFIRMED) for n in range(4)]
    undecided = [an_order(campaign, f"U-{n}", Call.Outcome.NO_INPUT) for n in range(2)]
    never_called = an_order(campaign, "N-1")
    cancelled = [an_order(campaign, f"X-{n}", Call.Outcome.CANCELLED) for n in range(3)]
    for order in confirmed[:3]:
        record_delivery(order, D.DELIVERED, via="api", at=T1)
    record_delivery(confirmed[3], D.RETURNED, via="api", at=T1)
    record_delivery(undecided[0], D.RETURNED, via="api", at=T1)
    record_delivery(undecided[1], D.SHIPPED, via="api", at=T1)
    record_delivery(never_called, D.DELIVERED, via="api", at=T1)
    record_delivery(cancelled[0], D.RETURNED, via="api", at=T1)  # shipped anyway

    figures = stats.figures_total()
    assert (figures.shipped, figures.delivered, figures.returned) == (8, 4, 3)
    assert (figures.delivered_confirmed, figures.returned_confirmed) == (3, 1)
    assert (figures.delivered_undecided, figures.returned_undecided) == (0, 1)
    assert (figures.delivered_not_called, figures.returned_not_called) == (1, 0)
    assert figures.return_rate == Decimal("42.9")
    assert figures.cancelled_unshipped == 2
    assert figures.returns_avoided == Decimal("800.00")
    assert figures.net_saved == Decimal("800.00") - figures.all_charges
    assert counters.mismatches() == []

    Store.objects.filter(pk=store.pk).update(return_cost=Decimal("550.00"))
    assert stats.figures_total().returns_avoided == Decimal("1100.00")
    assert counters.mismatches() == []


def test_an_order_writing_only_its_status_runs_no_count(campaign):
    """The orders' row triggers fire only for a change of a counted column: the writes of an
    order's status with each call transition cost nothing (PostgreSQL counts the calls of the
    counting function)."""
    order = an_order(campaign, "S-1", Call.Outcome.CANCELLED)  # an order that counts

    def counting_runs() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT coalesce(sum(calls), 0) FROM pg_stat_xact_user_functions "
                "WHERE funcname = 'calls_count_order_figures'"
            )
            return cursor.fetchone()[0]

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL track_functions = 'pl'")
        Order.objects.filter(pk=order.pk).update(status=Order.Status.CALLING)
        assert counting_runs() == 0
        record_delivery(order, D.RETURNED, via="api", at=T1)
        assert counting_runs() == 1


def test_an_order_known_to_have_shipped_is_not_called_again(campaign, agent_user):
    from calls.actions import ActionRefused, call_again

    order = an_order(campaign, "KK-6", Call.Outcome.NO_INPUT)
    record_delivery(order, D.SHIPPED, via="api", at=T1)

    with pytest.raises(ActionRefused, match="known to be shipped"):
        call_again(order, agent_user)
    assert order.calls.count() == 1
