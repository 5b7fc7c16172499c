"""The promise, end to end: one robocall per order, followed to its true outcome, nothing lost.

A real worker and beat (subprocesses, as in production) drive real calls against the simulator
over HTTP, with the provider misbehaving, a worker killed with SIGKILL, and Redis flushed.
"""

from __future__ import annotations

import base64
import json
from decimal import Decimal

import pytest
import redis
from django.apps import apps
from django.conf import settings
from django.db import connection, models

from calls.models import Call, CallEvent, Campaign, Store
from calls.pipeline.outcomes import DTMF_OUTCOMES
from tests.conftest import TEST_API_KEY
from tests.support.pipeline import Pipeline, queue_orders, wait_for, wait_until_final

pytestmark = pytest.mark.django_db(transaction=True)

ORDERS = 50
# At least 10% of get_call answers broken, at least 5% of `calls` answers lost after insert.
FAULTS = {
    "get_call_5xx": 0.05,
    "get_call_html": 0.04,
    "get_call_broken_json": 0.04,
    "calls_lost_after_insert": 0.08,
}


def make_campaign(store: Store) -> Campaign:
    return queue_orders(store, "Eid sale", ORDERS)


def broker_messages() -> list[str]:
    """Bodies of the task messages waiting in Redis right now, decoded."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    bodies = []
    for raw in client.lrange("celery", 0, -1):
        message = json.loads(raw)
        bodies.append(base64.b64decode(message["body"]).decode())
    return bodies


def assert_true_to_the_simulator(
    campaign: Campaign, simulator, *, allow_unsent_review: bool = False
) -> None:
    """Every order called at most once (exactly once if we hold a call id), and every outcome and
    charge the simulator decided is the one we recorded."""
    stats = simulator.stats()
    sim_calls = {str(c["call_id"]): c for c in simulator.calls()}
    by_order = stats["calls_by_order"]
    assert all(count == 1 for count in by_order.values()), f"an order was called twice: {by_order}"
    assert stats["requests"]["calls"] == len(sim_calls) <= campaign.calls.count()

    lost = {c["text2"] for c in sim_calls.values() if c["answer_lost"]}
    for call in campaign.calls.all():
        assert call.state == Call.State.FINAL, call
        if call.order_id in lost:
            assert call.outcome == Call.Outcome.NEEDS_REVIEW, call
            assert call.provider_call_id is None
            assert "not sent again" in call.review_reason
            continue
        if call.provider_call_id is None:
            assert allow_unsent_review, (
                f"{call} was never sent: {call.outcome} {call.review_reason}"
            )
            assert call.outcome == Call.Outcome.NEEDS_REVIEW and call.review_reason
            assert by_order.get(call.order_id, 0) <= 1
            continue
        decided = sim_calls[call.provider_call_id]
        assert decided["text2"] == call.order_id
        final = decided["final"]
        if final["call_status"] == 2:
            expected = DTMF_OUTCOMES.get(final["dtmf"], Call.Outcome.NEEDS_REVIEW)
        else:
            expected = Call.Outcome.UNREACHABLE
        assert call.outcome == expected, (call, decided)
        assert call.call_status == final["call_status"]
        assert call.dtmf == final["dtmf"]
        assert call.retry == final["retry"]
        assert call.call_charges == Decimal(final["call_charges"])


def assert_key_never_leaked(pipeline: Pipeline) -> None:
    logs = pipeline.logs()
    assert "calls.tasks.send_call" in logs, "the worker log is not the one we think"
    assert "DEBUG" in logs
    assert TEST_API_KEY not in logs
    for model in apps.get_models():
        text_fields = [
            f.name
            for f in model._meta.get_fields()
            if isinstance(f, models.CharField | models.TextField | models.JSONField) and f.concrete
        ]
        for name in text_fields:
            lookup = (
                f"{name}__icontains"
                if not isinstance(model._meta.get_field(name), models.JSONField)
                else None
            )
            if lookup:
                assert not model.objects.filter(**{lookup: TEST_API_KEY}).exists(), (model, name)
    for event in CallEvent.objects.all():
        assert TEST_API_KEY not in json.dumps(event.data)


def test_fifty_calls_with_a_misbehaving_provider_each_get_one_call_and_their_true_outcome(
    simulator, store
):
    simulator.set_faults(**FAULTS)
    campaign = make_campaign(store)
    # Four pool processes racing for the same calls: one call each must hold all the same.
    pipeline = Pipeline(base_url=simulator.base_url, concurrency=4).start()
    seen_messages: list[str] = []
    try:
        wait_until_final(
            campaign,
            pipeline,
            timeout=60,
            on_each_look=lambda: seen_messages.extend(broker_messages()),
        )
    finally:
        pipeline.stop()

    assert_true_to_the_simulator(campaign, simulator)
    stats = simulator.stats()
    assert stats["faults"].get("calls_lost_after_insert", 0) >= 1, (
        "no answer was lost: test is vacuous"
    )
    broken = sum(
        stats["faults"].get(k, 0) for k in ("get_call_5xx", "get_call_html", "get_call_broken_json")
    )
    assert broken >= 1
    assert (
        Call.objects.filter(outcome=Call.Outcome.NEEDS_REVIEW).count()
        == stats["faults"]["calls_lost_after_insert"]
    )
    # Task messages carry ids only, never a key.
    assert seen_messages, "no task message was ever seen in the broker"
    assert not any(TEST_API_KEY in body for body in seen_messages)
    assert_key_never_leaked(pipeline)
    # Every change left an event: created calls have at least claimed, sent/final.
    for call in campaign.calls.all():
        kinds = set(call.events.values_list("kind", flat=True))
        assert {CallEvent.Kind.CLAIMED, CallEvent.Kind.FINAL} <= kinds, (call, kinds)


def test_a_worker_killed_mid_run_and_restarted_loses_nothing_and_calls_nobody_twice(
    simulator, store
):
    simulator.set_faults(latency_ms=150, calls_lost_after_insert=0.05)
    campaign = make_campaign(store)
    pipeline = Pipeline(base_url=simulator.base_url, concurrency=4).start()
    try:
        worker = pipeline.workers[0]
        wait_for(
            lambda: simulator.stats()["requests"].get("calls", 0) >= 12,
            timeout=60,
            interval=0.05,
            what="a dozen calls to be placed",
        )
        # SIGKILL, mid-run: with 150 ms a request, calls are usually mid-request (how many is
        # luck, so nothing is asserted of it; what must hold holds for any number).
        pipeline.kill(worker)
        pipeline.start_worker()
        wait_until_final(campaign, pipeline, timeout=60)
    finally:
        pipeline.stop()

    assert_true_to_the_simulator(campaign, simulator, allow_unsent_review=True)
    assert_key_never_leaked(pipeline)


def test_a_flushed_redis_mid_run_loses_nothing_and_calls_nobody_twice(simulator, store):
    simulator.set_faults(latency_ms=50)
    campaign = make_campaign(store)
    pipeline = Pipeline(base_url=simulator.base_url, concurrency=2).start()
    try:
        wait_for(
            lambda: simulator.stats()["requests"].get("calls", 0) >= 10,
            timeout=60,
            interval=0.05,
            what="ten calls to be placed",
        )
        redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
        wait_until_final(campaign, pipeline, timeout=60)
    finally:
        pipeline.stop()

    assert_true_to_the_simulator(campaign, simulator)
    assert not campaign.calls.filter(outcome=Call.Outcome.NEEDS_REVIEW).exists()


def database_sessions() -> int:
    """Connections PostgreSQL has accepted to the test database so far."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        (sessions,) = cursor.fetchone()
    return sessions


def test_a_worker_keeps_its_database_connection_from_task_to_task(simulator, store):
    # Celery's Django fixup closes the connection around every task unless told to reuse it:
    # then every send and every sweep was a new PostgreSQL backend, planning the counting
    # triggers again (robodash/celery.py, CELERY_DB_REUSE_MAX).
    campaign = queue_orders(store, "Kept connections", 20)
    before = database_sessions()
    pipeline = Pipeline(base_url=simulator.base_url, concurrency=2).start()
    try:
        wait_for(
            lambda: not campaign.calls.filter(sent_at=None).exists(),
            timeout=60,
            what="every call to be sent",
        )
    finally:
        pipeline.stop()  # the workers' backends end, and their sessions are counted

    tasks = pipeline.logs().count("calls.tasks.send_call[")
    assert tasks >= 20
    # Two pool processes, each with its connection (a new one at most every CONN_MAX_AGE).
    assert database_sessions() - before <= 4
