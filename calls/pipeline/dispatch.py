"""Sending calls: claim, commit, then send — so a customer is never called twice by accident.

A worker moves a call `queued -> sending` under a row lock and commits *before* the HTTP request.
A redelivered or duplicated task then finds the call no longer queued and does nothing. After
the request the call is `in_progress` (the provider gave a call id), `failed` (a definite
rejection), `queued` again (we could not connect, so nothing left), or `needs_review` (anything
ambiguous: the call may or may not have been placed, and it is never re-sent by itself). The
transitions themselves are calls/transitions.py's; this module decides which one happens.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Q
from django.utils import timezone

from calls import transitions
from calls.models import Call, CallEvent, Campaign, Store
from calls.pipeline import timing
from calls.pipeline.phone_cap import defer_past_daily_cap
from calls.pipeline.provider import (
    InvalidApiKey,
    ProviderAmbiguous,
    ProviderRejected,
    ProviderUnavailable,
    RobocallClient,
)
from calls.pipeline.reconnect import reconnecting
from calls.redaction import redact
from robodash.celery import enqueue

log = logging.getLogger(__name__)

SWEEP_BATCH = 500  # calls handed to workers per sweep and kind; the next sweep takes the rest


# One early sweep serves every order that arrives within this many seconds (per process): a burst
# of webhooks or API orders wakes the dispatcher once, not once per order.
WAKE_INTERVAL = 0.5
_last_wake = 0.0


def wake_dispatcher() -> None:
    """Start a sweep as soon as the current transaction commits, instead of at the next beat.

    Purely a speed-up: if the broker is unreachable the beat's next sweep finds the work anyway.
    """

    def start_sweep() -> None:
        global _last_wake

        now = time.monotonic()
        if now - _last_wake < WAKE_INTERVAL:
            return  # a sweep woken moments ago, or the next beat, takes this one too
        _last_wake = now

        try:
            enqueue("calls.tasks.sweep_due_work")
        except Exception as exc:  # the broker is down: beat will find the work
            log.warning(
                "could not wake the dispatcher (%s); the next sweep will", type(exc).__name__
            )

    transaction.on_commit(start_sweep)


# --- The sweep's part: hand due calls to workers -------------------------------------------


def reschedule_outside_hours(now: dt.datetime) -> int:
    """Move due calls of stores outside their calling hours to the next window's start."""
    moved = 0
    for store in Store.objects.filter(paused=False):
        if store.in_calling_hours(now):
            continue
        start = store.next_calling_time(now)
        with transaction.atomic():
            ids = list(
                Call.objects.select_for_update(skip_locked=True)
                .filter(store=store, state=Call.State.QUEUED, scheduled_for__lte=now)
                .values_list("id", flat=True)
            )
            if not ids:
                continue
            Call.objects.filter(id__in=ids).update(scheduled_for=start, enqueued_at=None)
            CallEvent.objects.bulk_create(
                CallEvent(
                    call_id=call_id,
                    kind=CallEvent.Kind.RESCHEDULED,
                    data={"reason": "outside calling hours", "scheduled_for": start.isoformat()},
                )
                for call_id in ids
            )
        moved += len(ids)
    return moved


def claim_due_sends(now: dt.datetime, limit: int = SWEEP_BATCH) -> list[int]:
    """Ids of due queued calls not handed to a worker recently; marks them handed over.

    Only marks them: the claim that matters (queued -> sending) happens in `send_call`, so a
    task lost by the broker just waits for the enqueue lease and is handed over again.
    """
    with transaction.atomic():
        ids = list(
            Call.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(
                state=Call.State.QUEUED,
                scheduled_for__lte=now,
                store__paused=False,
                campaign__status=Campaign.Status.RUNNING,
            )
            .filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=now - timing.enqueue_lease()))
            .order_by("scheduled_for", "id")
            .values_list("id", flat=True)[:limit]
        )
        Call.objects.filter(id__in=ids).update(enqueued_at=now)
    return ids


def expire_sending_leases(now: dt.datetime) -> int:
    """Calls left in `sending` by a worker that died mid-request: the call may have been placed."""
    with transaction.atomic():
        ids = list(
            Call.objects.select_for_update(skip_locked=True)
            .filter(state=Call.State.SENDING, claimed_at__lt=now - timing.sending_lease())
            .values_list("id", flat=True)
        )
        for call_id in ids:
            transitions.finish(
                Call.objects.get(id=call_id),
                Call.Outcome.NEEDS_REVIEW,
                now,
                reason="the worker stopped while sending; the call may have been placed, "
                "so it was not sent again",
            )
    return len(ids)


# --- The worker's part: send one call -------------------------------------------------------


def send_call(call_id: int) -> None:
    # Each step waits while PostgreSQL is away (calls/pipeline/reconnect.py): the ones after
    # the request above all, whose answer this worker alone knows until it is saved.
    what = f"call {call_id}"
    call = reconnecting(lambda: _claim_for_sending(call_id, timezone.now()), what=what)
    if call is None:
        return
    client = client_for(call.store)  # the claim built it (kept per store and thread)
    try:
        placed = client.place_call(call.provider_params())
    except ProviderUnavailable as exc:
        error = str(exc)
        reconnecting(lambda: _requeue_unsent(call, error, backoff=True), what=what)
    except InvalidApiKey as exc:
        # The account, not the order, is at fault: keep the call and stop the store.
        error = str(exc)
        reconnecting(lambda: _requeue_unsent(call, error, backoff=False), what=what)
        pause_store(
            call.store, Store.PauseKind.KEY_REJECTED, f"the provider rejected the API key ({exc})"
        )
    except ProviderRejected as exc:
        error = str(exc)
        reconnecting(
            lambda: transitions.finish_if_sending(call, Call.Outcome.FAILED, error=error),
            what=what,
        )
    except ProviderAmbiguous as exc:
        error = str(exc)
        reconnecting(
            lambda: transitions.finish_if_sending(
                call,
                Call.Outcome.NEEDS_REVIEW,
                error=error,
                reason=f"{error}; the call may or may not have been placed, so it was not sent "
                "again",
            ),
            what=what,
        )
    except BaseException as exc:  # a bug or a time limit mid-request: as ambiguous as a reset
        transitions.finish_if_sending(
            call,
            Call.Outcome.NEEDS_REVIEW,
            error=redact(f"{type(exc).__name__}: {exc}"),
            reason="sending was interrupted; the call may or may not have been placed",
        )
        if not isinstance(exc, Exception):
            raise
    else:
        # Logged before the write, so the provider's id survives a database failure below.
        log.info("call %s accepted by the provider as %s", call.id, placed.call_id)
        try:
            _mark_sent(call, placed.call_id)
        except DatabaseError:
            log.exception(
                "call %s was placed as provider call %s but could not be saved, the database "
                "away too long; it will go to review when its lease ends",
                call.id,
                placed.call_id,
            )
            raise


def _client_or_pause(store: Store) -> RobocallClient | None:
    """The store's client, built before its call is claimed: a failure here (a key that cannot
    be decrypted, a bad base URL) pauses the store and claims nothing, so no call is left
    looking as if it might have been sent."""
    try:
        return client_for(store)
    except Exception as exc:
        log.exception("store %s cannot reach the provider", store.pk)
        pause_store(store, Store.PauseKind.PROVIDER_UNUSABLE, f"{type(exc).__name__}: {exc}")
        return None


def pause_store(store: Store, kind: Store.PauseKind, detail: str) -> None:
    """Stop sending for a store until a person fixes what `kind` names and resumes it. The
    pages word `kind`; `detail` (the provider's or the error's words) is for support."""
    detail = redact(detail)
    updated = Store.objects.filter(pk=store.pk, paused=False).update(
        paused=True, pause_kind=kind, paused_reason=detail[:500]
    )
    if updated:
        log.warning("store %s paused (%s): %s", store.pk, kind.value, detail)


def _claim_for_sending(call_id: int, now: dt.datetime) -> Call | None:
    """queued -> sending under a row lock, committed before any request leaves; None when the
    call is not to be sent now (someone else's, not due, its store paused or unable to build its
    client). One read of the call, its store and its campaign serves every check."""
    with transaction.atomic():
        try:
            call = (
                Call.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("store", "campaign")
                .get(id=call_id, state=Call.State.QUEUED)
            )
        except Call.DoesNotExist:
            return None  # another worker has it, or it is no longer queued
        store, campaign = call.store, call.campaign
        if store.paused or campaign.status != Campaign.Status.RUNNING or call.scheduled_for > now:
            Call.objects.filter(id=call.id).update(enqueued_at=None)
            return None
        if not store.in_calling_hours(now):
            start = store.next_calling_time(now)
            Call.objects.filter(id=call.id).update(scheduled_for=start, enqueued_at=None)
            transitions.record_event(
                call,
                CallEvent.Kind.RESCHEDULED,
                reason="outside calling hours",
                scheduled_for=start.isoformat(),
            )
            return None
        if store.max_calls_per_phone_per_day is not None and defer_past_daily_cap(call, store, now):
            return None  # the phone has had its calls today: moved to tomorrow's window
        if _client_or_pause(store) is None:
            return None
        transitions.start_sending(call, now)
    return call


def _mark_sent(call: Call, provider_call_id: str) -> None:
    first_poll = timezone.now() + timing.scaled(timing.FIRST_POLL_AFTER)
    tried = False

    def write() -> bool:
        nonlocal tried
        if tried and Call.objects.filter(id=call.id, provider_call_id=provider_call_id).exists():
            return True  # the try before committed; only its answer was lost with the connection
        tried = True
        return transitions.mark_sent(call, provider_call_id, first_poll)

    if not reconnecting(write, what=f"call {call.id} (provider call {provider_call_id})"):
        log.error("call %s was accepted as %s after it was reviewed", call.id, provider_call_id)


def _requeue_unsent(call: Call, error: str, *, backoff: bool) -> None:
    """Nothing left for the provider (it could not be reached, or refused the key): the call
    goes back to the queue, with a growing wait when the provider is unreachable."""
    wait = 0.0
    if backoff:
        wait = min(
            timing.SEND_RETRY_BACKOFF * 2 ** (call.send_attempts - 1), timing.SEND_RETRY_BACKOFF_CAP
        )
    transitions.requeue_unsent(call, error, timezone.now() + timing.scaled(wait))


# --- One HTTP client per store and thread, so connections are reused across tasks -----------

_clients = threading.local()


def client_for(store: Store) -> RobocallClient:
    cache: dict[int, tuple[tuple[str, str], RobocallClient]] = (
        getattr(_clients, "by_store", None) or {}
    )
    _clients.by_store = cache
    identity = (store.api_key_encrypted, settings.ROBOCALL_BASE_URL)
    cached = cache.get(store.pk)
    if cached is None or cached[0] != identity:
        if cached is not None:
            cached[1].close()
        cached = (identity, RobocallClient.for_store(store))
        cache[store.pk] = cached
    return cached[1]
