"""Claim, commit, then send: each path out of `sending`, run in-process against the simulator."""

from __future__ import annotations

import datetime as dt
import socket
from decimal import Decimal

import pytest
from django.utils import timezone

from calls.crypto import encrypt as _encrypted
from calls.models import Call, CallEvent, Campaign, Store
from calls.pipeline import dispatch, polling, timing
from tests.support.orders import create_call
from tests.support.pipeline import wait_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign(store: Store) -> Campaign:
    return Campaign.objects.create(store=store, name="Launch week")


@pytest.fixture
def always_open(store: Store) -> Store:
    assert store.calls_around_the_clock
    return store


def queue(campaign: Campaign, order: str = "ORD-1", phone: str = "923001234567") -> Call:
    return create_call(
        store=campaign.store,
        campaign=campaign,
        order_id=order,
        phone=phone,
        amount=Decimal("2500.00"),
        voice_id=102,
        text1="Karachi Kitchenware",
        text2=order,
    )


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_sent_call_is_in_progress_with_the_providers_id(
    provider_url, campaign, always_open, simulator
):
    call = queue(campaign)
    dispatch.send_call(call.id)
    call.refresh_from_db()
    assert call.state == Call.State.IN_PROGRESS
    assert call.provider_call_id == str(simulator.calls()[0]["call_id"])
    assert call.next_poll_at > call.sent_at
    assert list(call.events.values_list("kind", flat=True)) == [
        CallEvent.Kind.CLAIMED,
        CallEvent.Kind.SENT,
    ]


def test_a_redelivered_send_task_does_not_call_again(
    provider_url, campaign, always_open, simulator
):
    call = queue(campaign)
    dispatch.send_call(call.id)
    dispatch.send_call(call.id)
    assert simulator.stats()["requests"]["calls"] == 1


def test_a_paused_store_or_campaign_sends_nothing(provider_url, campaign, always_open, simulator):
    call = queue(campaign)
    always_open.paused = True
    always_open.save()
    dispatch.send_call(call.id)
    campaign.status = Campaign.Status.PAUSED
    campaign.save()
    always_open.paused = False
    always_open.save()
    dispatch.send_call(call.id)
    assert simulator.stats()["requests"].get("calls", 0) == 0
    call.refresh_from_db()
    assert call.state == Call.State.QUEUED
    assert dispatch.claim_due_sends(timezone.now()) == []


def test_a_call_due_outside_calling_hours_waits_for_the_next_window(
    provider_url, store, campaign, simulator
):
    local_hour = timezone.now().astimezone(store.zone).hour
    # A one-hour window that is certainly not now.
    store.calling_start = dt.time((local_hour + 2) % 24, 0)
    store.calling_end = dt.time((local_hour + 3) % 24, 0)
    store.save()
    call = queue(campaign)
    now = timezone.now()
    assert dispatch.reschedule_outside_hours(now) == 1
    call.refresh_from_db()
    assert call.scheduled_for > now
    assert call.scheduled_for.astimezone(store.zone).time() == store.calling_start
    assert dispatch.claim_due_sends(now) == []
    assert call.events.filter(kind=CallEvent.Kind.RESCHEDULED).exists()
    dispatch.send_call(call.id)
    assert simulator.stats()["requests"].get("calls", 0) == 0


def test_a_definite_rejection_fails_the_call_with_the_providers_reason(
    provider_url, campaign, always_open
):
    call = queue(campaign, phone="92300123")  # the provider rejects a malformed number
    dispatch.send_call(call.id)
    call.refresh_from_db()
    assert call.outcome == Call.Outcome.FAILED
    assert "400" in call.last_error or "Invalid" in call.last_error


def test_a_provider_that_cannot_be_reached_gets_the_call_again_later(
    settings, campaign, always_open
):
    settings.ROBOCALL_BASE_URL = f"http://127.0.0.1:{closed_port()}/api/v1/"
    call = queue(campaign)
    dispatch.send_call(call.id)
    call.refresh_from_db()
    assert call.state == Call.State.QUEUED
    assert call.scheduled_for > timezone.now()
    assert call.last_error and "api_key" not in call.last_error
    assert call.events.filter(kind=CallEvent.Kind.SEND_RETRY).exists()


def test_a_provider_down_for_good_keeps_the_order_queued_with_a_capped_wait(
    settings, campaign, always_open
):
    settings.ROBOCALL_BASE_URL = f"http://127.0.0.1:{closed_port()}/api/v1/"
    call = queue(campaign)
    for _ in range(12):
        Call.objects.filter(id=call.id).update(scheduled_for=timezone.now())
        dispatch.send_call(call.id)
    call.refresh_from_db()
    assert call.state == Call.State.QUEUED  # never placed, so never given up on
    assert call.send_attempts == 12
    cap = timing.scaled(timing.SEND_RETRY_BACKOFF_CAP)
    assert call.scheduled_for <= timezone.now() + cap
    assert "could not" in call.last_error.lower() or "connect" in call.last_error.lower()


def test_a_rejected_api_key_pauses_the_store_and_keeps_the_call(
    provider_url, campaign, always_open, simulator
):
    call = queue(campaign)
    store = always_open
    Store.objects.filter(pk=store.pk).update(api_key_encrypted=_encrypted("sk-wrong-key-000000"))
    dispatch.send_call(call.id)
    call.refresh_from_db()
    store.refresh_from_db()
    assert call.state == Call.State.QUEUED
    assert store.paused
    assert store.pause_kind == Store.PauseKind.KEY_REJECTED
    assert "rejected the API key" in store.paused_reason
    assert "sk-wrong-key" not in store.paused_reason
    assert simulator.stats()["requests"]["calls"] == 1
    store.paused = False
    store.save()
    store.refresh_from_db()
    assert store.paused_reason == ""


def test_a_store_whose_key_cannot_be_decrypted_is_paused_and_nothing_is_claimed(
    provider_url, campaign, always_open, simulator
):
    call = queue(campaign)
    Store.objects.filter(pk=always_open.pk).update(api_key_encrypted="not-a-fernet-token")
    dispatch.send_call(call.id)
    call.refresh_from_db()
    always_open.refresh_from_db()
    assert call.state == Call.State.QUEUED and call.claimed_at is None
    assert always_open.paused
    assert always_open.pause_kind == Store.PauseKind.PROVIDER_UNUSABLE
    assert "FIELD_ENCRYPTION_KEY" in always_open.paused_reason
    assert simulator.stats()["requests"].get("calls", 0) == 0


def test_a_connect_failure_after_the_lease_ran_out_undoes_the_review(campaign, always_open):
    call = queue(campaign)
    claimed = dispatch._claim_for_sending(call.id, timezone.now())
    assert claimed is not None
    dispatch.expire_sending_leases(
        timezone.now() + timing.sending_lease() + dt.timedelta(seconds=1)
    )
    dispatch._requeue_unsent(claimed, "could not connect", backoff=True)
    call.refresh_from_db()
    assert call.state == Call.State.QUEUED
    assert call.outcome == "" and call.review_reason == ""


def test_a_late_acceptance_revives_a_reviewed_call_only_if_nobody_acted_on_it(
    campaign, always_open, agent_user
):
    from calls import actions

    first, second = queue(campaign, "ORD-1"), queue(campaign, "ORD-2", "923001234568")
    later = timezone.now() + timing.sending_lease() + dt.timedelta(seconds=1)
    claims = [dispatch._claim_for_sending(c.id, timezone.now()) for c in (first, second)]
    dispatch.expire_sending_leases(later)
    child = actions.call_again(Call.objects.get(id=second.id).shop_order, agent_user)

    dispatch._mark_sent(claims[0], "777001")
    dispatch._mark_sent(claims[1], "777002")

    first.refresh_from_db()
    second.refresh_from_db()
    assert first.state == Call.State.IN_PROGRESS and first.provider_call_id == "777001"
    assert second.outcome == Call.Outcome.NEEDS_REVIEW and second.provider_call_id is None
    assert second.events.filter(kind=CallEvent.Kind.SENT, data__provider_call_id="777002").exists()
    assert child.parent_id == second.id


def test_a_poll_that_fails_on_our_side_is_recorded_and_retried_not_left_stuck(
    provider_url, campaign, always_open
):
    call = queue(campaign)
    Call.objects.filter(id=call.id).update(
        state=Call.State.IN_PROGRESS, provider_call_id="20001", sent_at=timezone.now()
    )
    Store.objects.filter(pk=always_open.pk).update(api_key_encrypted="not-a-fernet-token")
    polling.poll_call(call.id)
    call.refresh_from_db()
    assert call.state == Call.State.IN_PROGRESS
    assert call.poll_errors == 1 and call.poll_count == 0
    assert call.next_poll_at > timezone.now()
    assert call.events.filter(kind=CallEvent.Kind.POLL_ERROR).exists()


def test_a_lost_answer_needs_review_and_is_never_sent_again(
    provider_url, campaign, always_open, simulator
):
    simulator.set_faults(calls_lost_after_insert=1.0)
    call = queue(campaign)
    dispatch.send_call(call.id)
    dispatch.send_call(call.id)
    call.refresh_from_db()
    assert call.outcome == Call.Outcome.NEEDS_REVIEW
    assert "may or may not have been placed" in call.review_reason
    assert simulator.stats()["requests"]["calls"] == 1
    assert dispatch.claim_due_sends(timezone.now()) == []


def test_a_garbled_answer_to_calls_needs_review(provider_url, campaign, always_open, simulator):
    simulator.set_faults(calls_5xx_after_insert=1.0)
    call = queue(campaign)
    dispatch.send_call(call.id)
    call.refresh_from_db()
    assert call.outcome == Call.Outcome.NEEDS_REVIEW
    assert simulator.stats()["requests"]["calls"] == 1


def test_a_call_left_sending_by_a_dead_worker_goes_to_review_after_its_lease(campaign, always_open):
    call = queue(campaign)
    claimed = timezone.now() - timing.sending_lease() - dt.timedelta(seconds=1)
    Call.objects.filter(id=call.id).update(state=Call.State.SENDING, claimed_at=claimed)
    assert dispatch.expire_sending_leases(timezone.now()) == 1
    call.refresh_from_db()
    assert call.outcome == Call.Outcome.NEEDS_REVIEW
    assert "worker stopped while sending" in call.review_reason


def test_a_claimed_call_is_handed_out_once_per_lease(campaign, always_open):
    call = queue(campaign)
    now = timezone.now()
    assert dispatch.claim_due_sends(now) == [call.id]
    assert dispatch.claim_due_sends(now) == []
    later = now + timing.enqueue_lease() + dt.timedelta(seconds=1)
    assert dispatch.claim_due_sends(later) == [call.id]


def test_polling_follows_a_call_to_its_scripted_outcome(
    provider_url, campaign, always_open, simulator, settings
):
    settings.ROBODASH_TIME_SCALE = 60
    simulator.set_scripts(
        {"923001234567": [{"status": 5}, {"status": 2, "dtmf": 1, "talk_seconds": 40}]}
    )
    call = queue(campaign)
    dispatch.send_call(call.id)

    def poll_when_due() -> bool:
        now = timezone.now()
        for call_id in polling.claim_due_polls(now):
            polling.poll_call(call_id)
        return Call.objects.get(id=call.id).is_final

    wait_for(poll_when_due, timeout=30, interval=0.1, what="the call to be final")
    call.refresh_from_db()
    decided = simulator.calls()[0]
    assert call.outcome == Call.Outcome.CONFIRMED
    assert call.retry == 1 == decided["final"]["retry"]
    assert call.call_charges == Decimal(decided["final"]["call_charges"]) == Decimal("11.00")
    # Two attempts: the floor is two get_call requests; stay within twice that.
    assert 2 <= call.poll_count <= 4
    assert simulator.stats()["get_call_by_call_id"][call.provider_call_id] == call.poll_count


def test_a_call_the_provider_never_finalises_goes_to_review_with_its_reason(
    provider_url, campaign, always_open
):
    call = queue(campaign)
    long_ago = timezone.now() - dt.timedelta(days=2)
    Call.objects.filter(id=call.id).update(
        state=Call.State.IN_PROGRESS,
        provider_call_id="999999",
        sent_at=long_ago,
        next_poll_at=long_ago,
    )
    polling.poll_call(call.id)  # the simulator does not know the id: a failed poll past the bound
    call.refresh_from_db()
    assert call.outcome == Call.Outcome.NEEDS_REVIEW
    assert "no final status within" in call.review_reason


def test_polls_refused_for_the_api_key_pause_the_store_and_keep_the_call_in_progress(
    provider_url, campaign, always_open, simulator
):
    call = queue(campaign)
    dispatch.send_call(call.id)
    Store.objects.filter(pk=always_open.pk).update(api_key_encrypted=_encrypted("sk-rotated-0000"))
    for _ in range(polling.NOT_FOUND_LIMIT + 1):
        polling.poll_call(call.id)
    call.refresh_from_db()
    always_open.refresh_from_db()
    assert call.state == Call.State.IN_PROGRESS
    assert call.poll_errors == polling.NOT_FOUND_LIMIT + 1
    assert always_open.paused and "rejected the API key" in always_open.paused_reason
    assert always_open.pause_kind == Store.PauseKind.KEY_REJECTED
