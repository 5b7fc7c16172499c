"""Bulk actions on orders: each order changed as a person would change it (its own event and
write-back), what does not fit skipped and counted, a small batch in the request and a large one
in a real worker, chunk by chunk, resumable."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from calls import order_batches
from calls.models import Call, Campaign, Order, OrderBatch, OrderEvent, Store, User
from calls.order_batches import BatchRefused, start_batch
from calls.signals import order_settled
from tests.support.orders import create_call
from tests.support.pipeline import Pipeline, wait_for


@pytest.fixture
def campaign(store: Store) -> Campaign:
    return Campaign.objects.create(store=store, name="Eid sale")


def order_with(campaign: Campaign, order_id: str, **call: object) -> Order:
    made = create_call(
        store=campaign.store,
        campaign=campaign,
        order_id=order_id,
        phone="923001234567",
        amount=Decimal(900),
        voice_id=102,
        **call,
    )
    return Order.objects.get(pk=made.shop_order_id)


def unanswered(campaign: Campaign, order_id: str) -> Order:
    return order_with(
        campaign,
        order_id,
        state=Call.State.FINAL,
        outcome=Call.Outcome.NO_INPUT,
        finalized_at=timezone.now(),
    )


@pytest.mark.django_db
def test_a_small_batch_decides_each_order_as_a_person_would_and_counts_what_it_skipped(
    campaign: Campaign, agent_user: User
) -> None:
    open_one, open_two = unanswered(campaign, "KK-1"), unanswered(campaign, "KK-2")
    pressed = order_with(
        campaign, "KK-3", state=Call.State.FINAL, outcome="confirmed", finalized_at=timezone.now()
    )
    in_flight = order_with(campaign, "KK-4", state=Call.State.IN_PROGRESS)
    told: list[int] = []

    def tell(sender: object, order_id: int, **kwargs: object) -> None:
        told.append(order_id)

    order_settled.connect(tell)
    try:
        with transaction.atomic():
            batch = start_batch(
                agent_user,
                "cancel",
                [open_one.pk, open_two.pk, pressed.pk, in_flight.pk, 10**12],
                note=" no answer on WhatsApp ",
            )
    finally:
        order_settled.disconnect(tell)

    assert (batch.status, batch.position, batch.changed) == ("done", 5, 2)
    assert batch.skipped == {"decided": 1, "busy": 1, "gone": 1}
    for order in (open_one, open_two):
        order.refresh_from_db()
        assert (order.decision, order.decided_via, order.decided_by, order.followup) == (
            "cancelled",
            "agent",
            agent_user,
            "",
        )
        assert order.events.get(kind=OrderEvent.Kind.DECIDED).data["note"] == (
            "no answer on WhatsApp"
        )
    assert told == [open_one.pk, open_two.pk]  # each its own write-back
    pressed.refresh_from_db()
    assert (pressed.decision, pressed.decided_via) == ("confirmed", "key")  # never overridden


@pytest.mark.django_db
def test_a_batch_calls_again_but_not_an_order_an_agent_decided(
    campaign: Campaign, agent_user: User
) -> None:
    waiting = unanswered(campaign, "KK-1")
    decided = unanswered(campaign, "KK-2")
    Order.objects.filter(pk=decided.pk).update(
        decision="confirmed", decided_via="agent", decided_at=timezone.now(), decided_by=agent_user
    )

    batch = start_batch(agent_user, "call_again", [waiting.pk, decided.pk])

    assert (batch.changed, batch.skipped) == (1, {"decided_by_agent": 1})
    assert waiting.calls.filter(state=Call.State.QUEUED).count() == 1
    assert decided.calls.count() == 1


@pytest.mark.django_db
def test_a_batch_is_refused_when_empty_unknown_or_too_large(agent_user: User) -> None:
    with pytest.raises(BatchRefused, match="Select at least one order"):
        start_batch(agent_user, "cancel", [])
    with pytest.raises(BatchRefused, match="Choose confirm, cancel or call again"):
        start_batch(agent_user, "delete", [1])
    with pytest.raises(BatchRefused, match="narrow the filters"):
        start_batch(agent_user, "cancel", list(range(order_batches.MAX_ORDERS + 1)))
    assert not OrderBatch.objects.exists()


@pytest.mark.django_db
def test_a_stalled_batch_resumes_after_its_last_chunk(campaign: Campaign, agent_user: User) -> None:
    orders = [unanswered(campaign, f"KK-{n}") for n in range(3)]
    # A worker lost after the first order's chunk committed: position 1, moved long ago.
    batch = OrderBatch.objects.create(
        action="confirm",
        created_by=agent_user,
        order_ids=[o.pk for o in orders],
        position=1,
        changed=1,
        moved_at=timezone.now() - dt.timedelta(minutes=10),
    )

    assert order_batches.resume_stalled_batches() == [batch.pk]
    assert order_batches.resume_stalled_batches() == []  # handed on once
    order_batches.run_batch(batch.pk)

    batch.refresh_from_db()
    assert (batch.status, batch.position, batch.changed) == ("done", 3, 3)
    decisions = [Order.objects.get(pk=o.pk).decision for o in orders]
    assert decisions == ["", "confirmed", "confirmed"]  # the first was not done again


@pytest.mark.django_db(transaction=True)
def test_a_batch_over_the_request_limit_runs_in_a_worker_chunk_by_chunk(
    campaign: Campaign, agent_user: User, simulator
) -> None:
    count = order_batches.IN_REQUEST + 20
    now = timezone.now()
    orders = Order.objects.bulk_create(
        Order(
            store=campaign.store,
            campaign=campaign,
            order_id=f"BULK-{n}",
            phone="923001234567",
            amount=Decimal(900),
            voice_id=102,
            status=Order.Status.REJECTED,
            followup=Order.FollowUp.REJECTED,
            followup_at=now,
        )
        for n in range(count)
    )
    pipeline = Pipeline(base_url=simulator.base_url, concurrency=1)
    pipeline.start_worker()
    try:
        with transaction.atomic():
            batch = start_batch(agent_user, "confirm", [o.pk for o in orders], note="bulk")
        assert batch.position == 0  # handed to the worker, not run in the request
        seen: set[int] = set()

        def done() -> bool:
            current = OrderBatch.objects.get(pk=batch.pk)
            seen.add(current.position)
            return current.status == OrderBatch.Status.DONE

        wait_for(
            done,
            timeout=120,
            what="the worker to finish the batch",
            interval=0.05,
            describe=lambda: pipeline.logs()[-3000:],
        )
    finally:
        pipeline.stop()

    batch.refresh_from_db()
    assert (batch.changed, batch.skipped) == (count, {})
    assert Order.objects.filter(decision="confirmed", decided_via="agent").count() == count
    assert seen <= set(range(0, count + 1, order_batches.CHUNK)) | {count}  # whole chunks only
