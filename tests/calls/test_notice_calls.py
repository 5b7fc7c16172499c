"""Notice calls: one call telling the customer their order shipped (or that the shop cancelled
it), in the store's chosen voice, placed inside calling hours, followed to its end and charged
like any call against the simulator — and left out of every rule that follows the order's latest
call: it never moves the order, never holds up a person, never starts a re-attempt or a
write-back."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from calls import notices, transitions
from calls.figures import stats
from calls.intake.single import create_single_call
from calls.models import Call, CallEvent, Campaign, Order, OrderEvent, Store
from calls.pipeline import dispatch, polling
from calls.signals import order_settled
from calls.transitions import call_in_flight, finish, record_delivery
from tests.calls.test_commands import failing_command, run_command
from tests.conftest import TEST_API_KEY
from tests.shops.test_webhooks import (  # noqa: F401
    outcome,
    post_shopify,
    shopify,
    shopify_order,
)
from tests.support.orders import create_call
from tests.support.pages import text_of
from tests.support.pipeline import wait_for

pytestmark = pytest.mark.django_db

SHIPPED, CANCELLED = Call.NoticeOf.SHIPPED, Call.NoticeOf.CANCELLED
D = Order.Delivery
SHIPPED_VOICE, CANCELLED_VOICE = 7, 9
PHONE = "923001234567"


@pytest.fixture
def campaign(store: Store) -> Campaign:
    store.notify_on_shipped, store.notify_on_cancelled = SHIPPED_VOICE, CANCELLED_VOICE
    store.save()
    return Campaign.objects.create(store=store, name="Eid sale")


def an_order(campaign: Campaign, order_id: str, outcome: str = "", **fields: Any) -> Order:
    """An order and its verification call, final with `outcome` (else queued), as intake and
    the pipeline would have left them."""
    now = timezone.now()
    call = create_call(
        store=campaign.store,
        campaign=campaign,
        order_id=order_id,
        phone=PHONE,
        amount=Decimal("2500.00"),
        voice_id=102,
        text1=campaign.store.name,
        text2=order_id,
        state=Call.State.FINAL if outcome else Call.State.QUEUED,
        outcome=outcome,
        sent_at=now if outcome else None,
        finalized_at=now if outcome else None,
        **fields,
    )
    return Order.objects.get(pk=call.shop_order_id)


def notices_of(order: Order) -> list[Call]:
    return list(Call.objects.filter(shop_order=order, purpose=Call.Purpose.NOTICE).order_by("id"))


# What a notice call must never change.
ORDER_FIELDS = (
    "status",
    "decision",
    "decided_via",
    "decided_at",
    "followup",
    "followup_at",
    "claimed_by",
    "called",
    "delivery",
)


def as_it_stands(order: Order) -> dict[str, Any]:
    return {
        **Order.objects.values(*ORDER_FIELDS).get(pk=order.pk),
        "events": list(order.events.values_list("kind", flat=True)),
    }


@contextmanager
def settled_orders() -> Iterator[list[int]]:
    """The orders order_settled names meanwhile: each would be written back to its shop."""
    told: list[int] = []

    def receiver(sender: object, order_id: int, **kwargs: object) -> None:
        told.append(order_id)

    order_settled.connect(receiver)
    try:
        yield told
    finally:
        order_settled.disconnect(receiver)


def end(call: Call, outcome: str) -> None:
    """What polling does when the provider reports the call final."""
    with transaction.atomic():
        finish(Call.objects.select_for_update().get(pk=call.pk), outcome, timezone.now())


def sent(call: Call) -> Call:
    """The dispatcher's claim and the provider's acceptance, without the request."""
    transitions.start_sending(call, timezone.now())
    transitions.mark_sent(call, f"p-{call.pk}", timezone.now() + dt.timedelta(hours=1))
    return Call.objects.get(pk=call.pk)


def placed_and_followed(call: Call) -> Call:
    """Sent to the simulator and polled until final, in-process, as a worker would."""
    dispatch.send_call(call.id)

    def final() -> bool:
        for call_id in polling.claim_due_polls(timezone.now()):
            polling.poll_call(call_id)
        return Call.objects.get(id=call.id).is_final

    wait_for(final, timeout=30, interval=0.1, what="the notice call to be final")
    return Call.objects.get(id=call.id)


# --- one notice per order and event -----------------------------------------------------------


def test_a_shipped_order_gets_one_notice_call_in_the_stores_voice_however_often_it_is_told(
    campaign,
):
    create_single_call(
        campaign,
        phone="0300-1234567",
        amount="2500",
        order_id="KK-1",
        store_name=campaign.store.name,
    )
    order = Order.objects.get(order_id="KK-1")

    for via in ("shopify", "shopify", "sheet", "api"):
        record_delivery(order, D.SHIPPED, via=via)

    (notice,) = notices_of(order)
    verification = order.calls.verifying().get()
    assert (notice.purpose, notice.notice_of, notice.voice_id) == ("notice", SHIPPED, SHIPPED_VOICE)
    assert (notice.text1, notice.text2) == (verification.text1, verification.text2)
    assert (notice.text2, notice.phone, notice.amount) == ("KK-1", PHONE, Decimal("2500.00"))
    assert (notice.campaign, notice.state) == (campaign, Call.State.QUEUED)
    created = notice.events.get()
    assert (created.kind, created.data["purpose"], created.data["notice_of"]) == (
        CallEvent.Kind.CREATED,
        "notice",
        "shipped",
    )
    # The order went on waiting for its verification call: the notice did not move it.
    assert Order.objects.get(pk=order.pk).status == Order.Status.WAITING


def test_a_notice_call_is_placed_followed_to_its_end_and_charged_without_moving_the_order(
    campaign, provider_url, simulator, settings
):
    settings.ROBODASH_TIME_SCALE = 60
    # The customer presses 2 while the notice plays: in a verification call, a cancellation.
    simulator.set_scripts({PHONE: [{"status": 2, "dtmf": 2, "talk_seconds": 20}]})
    order = an_order(campaign, "KK-2", Call.Outcome.CONFIRMED)
    record_delivery(order, D.SHIPPED, via="shopify")
    before = as_it_stands(order)
    (notice,) = notices_of(order)

    with settled_orders() as told:
        notice = placed_and_followed(notice)

    placed = simulator.calls()[0]
    assert (placed["voice_id"], placed["text1"], placed["text2"]) == (
        "7",
        campaign.store.name,
        "KK-2",
    )
    assert (notice.outcome, notice.dtmf) == (Call.Outcome.CANCELLED, 2)
    assert notice.call_charges == Decimal(placed["final"]["call_charges"]) > 0
    assert as_it_stands(order) == before  # still confirmed by the key press, called, shipped
    assert told == []  # nothing written back to the shop
    assert notice.events.filter(kind=CallEvent.Kind.FINAL).exists()
    figures = stats.figures_total()
    assert (figures.notice_calls, figures.notice_charges) == (1, notice.call_charges)
    assert (figures.calls, figures.cancelled, figures.confirmed) == (1, 0, 1)
    assert figures.charges == Decimal("0.00")  # the verification call was not charged here
    assert figures.all_charges == notice.call_charges


def test_a_notice_to_an_order_never_called_leaves_it_never_called(campaign, provider_url):
    order = an_order(campaign, "KK-3")
    transitions.withdraw(order.calls.get(), None)  # the verification call never went out
    record_delivery(order, D.SHIPPED, via="api")
    (notice,) = notices_of(order)

    dispatch.send_call(notice.id)

    assert Call.objects.get(pk=notice.pk).state == Call.State.IN_PROGRESS
    order.refresh_from_db()
    assert (order.called, order.status) == (False, Order.Status.WITHDRAWN)


def test_a_notice_waits_for_the_stores_calling_hours(campaign, store, provider_url, simulator):
    local_hour = timezone.now().astimezone(store.zone).hour
    # A one-hour window that is certainly not now.
    store.calling_start = dt.time((local_hour + 2) % 24, 0)
    store.calling_end = dt.time((local_hour + 3) % 24, 0)
    store.save()
    order = an_order(campaign, "KK-4", Call.Outcome.CONFIRMED)

    now = timezone.now()
    record_delivery(order, D.SHIPPED, via="shopify")

    (notice,) = notices_of(order)
    assert notice.scheduled_for > now and store.in_calling_hours(notice.scheduled_for)
    assert notice.scheduled_for.astimezone(store.zone).time() == store.calling_start
    assert dispatch.claim_due_sends(timezone.now()) == []
    dispatch.send_call(notice.id)
    assert simulator.stats()["requests"].get("calls", 0) == 0


def test_no_notice_once_the_parcel_has_arrived(campaign):
    delivered = an_order(campaign, "KK-5", Call.Outcome.CONFIRMED)
    returned = an_order(campaign, "KK-6", Call.Outcome.CONFIRMED)

    record_delivery(delivered, D.DELIVERED, via="sheet")
    record_delivery(delivered, D.SHIPPED, via="shopify")  # late news, ignored
    record_delivery(returned, D.RETURNED, via="sheet")

    assert notices.queue_notice(Order.objects.get(pk=delivered.pk), CANCELLED) is None
    assert notices_of(delivered) == notices_of(returned) == []


def test_no_notice_when_the_store_has_chosen_no_voice_for_it(store):
    campaign = Campaign.objects.create(store=store, name="Quiet")
    assert store.notify_on_shipped is None and store.notify_on_cancelled is None
    order = an_order(campaign, "KK-7", Call.Outcome.CONFIRMED)

    record_delivery(order, D.SHIPPED, via="shopify")

    assert notices.queue_notice(order, CANCELLED) is None
    assert notices_of(order) == []


# --- a notice is no "latest call" ----------------------------------------------------------------


def test_a_queued_notice_holds_up_neither_deciding_nor_calling_again(client, campaign, agent_user):
    client.force_login(agent_user)
    to_decide = an_order(campaign, "KK-8", Call.Outcome.NO_INPUT)
    to_call = an_order(campaign, "KK-9", Call.Outcome.NO_INPUT)
    for order in (to_decide, to_call):
        assert notices.queue_notice(order, CANCELLED) is not None
        assert call_in_flight(order) is None
        page = text_of(client.get(reverse("order_detail", args=[order.pk])))
        assert "Call again" in page and "Confirm: tell the shop to ship" in page

    client.post(
        reverse("order_decide", args=[to_decide.pk]),
        {"decision": "confirmed", "note": "rang her back"},
    )
    client.post(reverse("order_call_again", args=[to_call.pk]))

    decided = Order.objects.get(pk=to_decide.pk)
    assert (decided.decision, decided.decided_via) == ("confirmed", Order.DecidedVia.AGENT)
    # The figures count the decision on the verification call it followed up, not the notice.
    assert to_decide.calls.verifying().get().hand_decision == "confirmed"
    assert notices_of(to_decide)[0].hand_decision == ""
    first, again = to_call.calls.verifying().order_by("id")
    assert (again.parent, again.campaign, again.state) == (first, campaign, Call.State.QUEUED)
    assert Order.objects.get(pk=to_call.pk).status == Order.Status.WAITING


def test_a_verification_call_ending_after_a_notice_moves_the_order_and_its_re_attempts(campaign):
    store = campaign.store
    store.reattempts = 1
    store.save()
    call = create_call(
        store=store,
        campaign=campaign,
        order_id="KK-10",
        phone=PHONE,
        amount=Decimal("900.00"),
        voice_id=102,
        state=Call.State.IN_PROGRESS,
        provider_call_id="p-kk-10",
    )
    order = call.shop_order
    notice = notices.queue_notice(order, CANCELLED)  # a later call than the one in flight
    assert notice is not None and notice.pk > call.pk

    end(call, Call.Outcome.UNREACHABLE)

    reattempt = order.calls.verifying().get(reattempt=1)
    assert (reattempt.parent, reattempt.state) == (call, Call.State.QUEUED)
    assert Order.objects.get(pk=order.pk).status == Order.Status.WAITING  # its re-attempt's
    before = as_it_stands(order)

    with settled_orders() as told:
        end(sent(notice), Call.Outcome.UNREACHABLE)  # nobody heard the notice either

    assert order.calls.count() == 3  # no re-attempt of a notice
    assert as_it_stands(order) == before and told == []


def test_the_last_unanswered_call_is_counted_without_notices_when_the_rule_cancels(campaign):
    store = campaign.store
    store.after_last_attempt = Store.AfterLastAttempt.CANCEL
    store.save()
    call = an_order(campaign, "KK-11").calls.get()
    order = call.shop_order
    notices.queue_notice(order, CANCELLED)
    call = sent(call)

    end(call, Call.Outcome.NO_INPUT)

    order.refresh_from_db()
    assert (order.decision, order.decided_via) == ("cancelled", Order.DecidedVia.POLICY)
    decided = order.events.get(kind=OrderEvent.Kind.DECIDED)
    assert decided.data["attempts"] == 1


def test_a_notice_whose_sending_lease_ran_out_opens_no_review_and_a_late_acceptance_follows_it(
    campaign, agent_user
):
    order = an_order(campaign, "KK-13", Call.Outcome.NO_INPUT)
    transitions.decide_by_hand(order, agent_user, Order.Decision.CONFIRMED, "she rang us")
    record_delivery(order, D.SHIPPED, via="api")
    (notice,) = notices_of(order)
    claimed_at = timezone.now() - dt.timedelta(hours=1)  # a worker that died mid-request
    transitions.start_sending(notice, claimed_at)
    before = as_it_stands(order)

    assert dispatch.expire_sending_leases(timezone.now()) == 1
    assert Call.objects.get(pk=notice.pk).outcome == Call.Outcome.NEEDS_REVIEW
    assert as_it_stands(order) == before  # nobody is asked to look at the order for it

    assert transitions.mark_sent(notice, "p-late", timezone.now())  # it was placed after all
    assert Call.objects.get(pk=notice.pk).state == Call.State.IN_PROGRESS
    assert as_it_stands(order) == before


# --- the shop's cancellation ------------------------------------------------------------------


def test_the_shop_cancelling_withdraws_a_waiting_shipped_notice_and_queues_one_cancelled_notice(
    client,
    campaign,
    shopify,  # noqa: F811
):
    store = campaign.store
    post_shopify(client, store, shopify_order(), delivery="d-1")
    order = Order.objects.get()
    end(sent(order.calls.get()), Call.Outcome.CONFIRMED)
    record_delivery(order, D.SHIPPED, via="shopify")
    (shipped_notice,) = notices_of(order)
    before = as_it_stands(order)

    body = shopify_order(cancelled_at="2026-11-29T10:00:00+05:00", cancel_reason="customer")
    with settled_orders() as told:
        first = post_shopify(client, store, body, topic="orders/cancelled", delivery="d-2")
        again = post_shopify(client, store, body, topic="orders/cancelled", delivery="d-3")

    assert outcome(first) == outcome(again) == "too_late"  # its call was made
    shipped_notice.refresh_from_db()
    assert (shipped_notice.state, shipped_notice.outcome) == ("final", Call.Outcome.WITHDRAWN)
    withdrawn, cancelled_notice = notices_of(order)
    assert (cancelled_notice.notice_of, cancelled_notice.voice_id) == (CANCELLED, CANCELLED_VOICE)
    assert cancelled_notice.state == Call.State.QUEUED  # the resend did not withdraw it
    after = as_it_stands(order)
    assert after == before and after["status"] == Order.Status.CONFIRMED and told == []


def test_the_shop_cancelling_an_order_still_waiting_for_its_call_tells_the_customer(
    client,
    campaign,
    shopify,  # noqa: F811
):
    store = campaign.store
    post_shopify(client, store, shopify_order(), delivery="d-1")
    body = shopify_order(cancelled_at="2026-11-29T10:00:00+05:00")

    cancelled = post_shopify(client, store, body, topic="orders/cancelled", delivery="d-2")

    assert outcome(cancelled) == "withdrawn"
    order = Order.objects.get()
    assert order.status == Order.Status.WITHDRAWN
    (notice,) = notices_of(order)
    assert (notice.notice_of, notice.state, notice.campaign) == (
        CANCELLED,
        Call.State.QUEUED,
        order.campaign,
    )


@pytest.mark.django_db(transaction=True)
def test_two_notices_of_one_event_at_once_make_one_call(campaign):
    """Two webhooks of one event at once: the second insert waits on the unique index for the
    first to commit, then is dropped (call_one_notice_per_order_event)."""
    order = an_order(campaign, "KK-12", Call.Outcome.CONFIRMED)
    first_inserted, first_may_commit = threading.Event(), threading.Event()
    second_backend: list[int] = []
    results: dict[str, Call | None] = {}

    def first() -> None:
        try:
            with transaction.atomic():
                results["first"] = notices.queue_notice(order, CANCELLED)
                first_inserted.set()
                first_may_commit.wait(20)
        finally:
            connection.close()

    def second() -> None:
        try:
            first_inserted.wait(20)
            second_backend.append(connection.cursor().connection.info.backend_pid)
            results["second"] = notices.queue_notice(order, CANCELLED)
        finally:
            connection.close()

    def second_waits_on_the_index() -> bool:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", second_backend
            )
            row = cursor.fetchone()
        return row is not None and row[0] == "Lock"

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    wait_for(lambda: second_backend, timeout=20, what="the second webhook to start")
    wait_for(second_waits_on_the_index, timeout=20, what="the second insert to wait")
    first_may_commit.set()
    for thread in threads:
        thread.join(30)

    assert results["first"] is not None and results["second"] is None
    assert len(notices_of(order)) == 1


# --- the store's settings: the page and add_store ---------------------------------------------


def store_data(**overrides: str) -> dict[str, str]:
    return {
        "name": "Karachi Kitchenware",
        "api_key": "",
        "default_voice_id": "102",
        "timezone": "Asia/Karachi",
        "calling_start": "09:00",
        "calling_end": "21:00",
        "provider_retries": "3",
        "retry_delays": "5, 10, 30",
        "low_balance_threshold": "500",
        **overrides,
    }


def test_the_settings_page_sets_and_shows_the_notice_voices_and_the_return_cost(admin, store):
    edit = reverse("store_edit", args=[store.pk])

    admin.post(edit, store_data(return_cost="350.50", notify_on_shipped="7"))

    store.refresh_from_db()
    assert (store.return_cost, store.notify_on_shipped, store.notify_on_cancelled) == (
        Decimal("350.50"),
        7,
        None,
    )
    listed = text_of(admin.get(reverse("settings")))
    assert "Rs 350.50" in listed and "when shipped: voice 7" in listed
    assert "when the shop cancels" not in listed
    admin.post(edit, store_data(notify_on_cancelled="9"))  # the cost and voice left blank
    store.refresh_from_db()
    assert (store.return_cost, store.notify_on_shipped, store.notify_on_cancelled) == (
        Decimal("0.00"),
        None,
        9,
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("return_cost", "-1", "Ensure this value is greater than or equal to 0"),
        ("return_cost", "lots", "Enter a number."),
        ("notify_on_shipped", "0", "Ensure this value is greater than or equal to 1"),
        ("notify_on_cancelled", "nine", "Enter a whole number."),
    ],
)
def test_the_settings_page_refuses_a_bad_return_cost_or_voice_saying_why(
    admin, store, field, value, message
):
    response = admin.post(reverse("store_edit", args=[store.pk]), store_data(**{field: value}))

    assert response.status_code == 200 and message in text_of(response)
    store.refresh_from_db()
    assert (store.return_cost, store.notify_on_shipped, store.notify_on_cancelled) == (
        Decimal("0.00"),
        None,
        None,
    )


def test_add_store_sets_the_notice_voices_and_the_return_cost_as_the_page_does(
    db, provider_url, monkeypatch
):
    monkeypatch.setenv("ROBOCALL_API_KEY", TEST_API_KEY)

    run_command(
        "add_store",
        "Quetta Quilts",
        *("--return-cost", "1,200", "--notify-on-shipped", "7", "--notify-on-cancelled", "9"),
    )

    store = Store.objects.get(name="Quetta Quilts")
    assert (store.return_cost, store.notify_on_shipped, store.notify_on_cancelled) == (
        Decimal("1200.00"),
        7,
        9,
    )
    monkeypatch.delenv("ROBOCALL_API_KEY")
    run_command("add_store", store.name, "--update", "--notify-on-shipped", "off")
    store.refresh_from_db()
    assert (store.return_cost, store.notify_on_shipped, store.notify_on_cancelled) == (
        Decimal("1200.00"),
        None,
        9,
    )


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--return-cost", "-5", "--return-cost must be an amount in rupees of 0 or more"),
        ("--return-cost", "lots", "--return-cost must be an amount in rupees of 0 or more"),
        ("--notify-on-shipped", "0", "--notify-on-shipped must be a voice id"),
        ("--notify-on-cancelled", "abc", "--notify-on-cancelled must be a voice id"),
    ],
)
def test_add_store_refuses_a_bad_return_cost_or_voice_before_asking_the_provider(
    db, simulator, provider_url, monkeypatch, option, value, message
):
    monkeypatch.setenv("ROBOCALL_API_KEY", TEST_API_KEY)

    error, _ = failing_command("add_store", "Quetta Quilts", option, value)

    assert message in str(error) and repr(value) in str(error)
    assert not Store.objects.exists()
    assert simulator.stats()["requests"].get("user_verify", 0) == 0
