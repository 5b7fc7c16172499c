"""Following sent calls to their final outcome with as few get_call requests as the truth allows.

Polls are paced by what the provider is doing (calls/pipeline/outcomes.py decides when to ask next):
soon after an attempt starts, again while it rings or talks, and after an unanswered attempt
not until the store's retry delay has passed and the next attempt should be over.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from calls.models import Call, CallEvent, Store
from calls.pipeline import timing
from calls.pipeline.dispatch import client_for, pause_store
from calls.pipeline.outcomes import judge_report, lifetime_bound, status_began_at
from calls.pipeline.provider import CallReport, InvalidApiKey, ProviderError
from calls.pipeline.reconnect import reconnecting
from calls.redaction import redact
from calls.transitions import finish, record_event

log = logging.getLogger(__name__)

POLL_BATCH = 500
NOT_FOUND_LIMIT = 3  # the provider denies knowing the call this many times in a row: review


def claim_due_polls(now: dt.datetime, limit: int = POLL_BATCH) -> list[int]:
    """Ids of in-progress calls due a poll; their next poll moves a lease ahead so the next
    sweep does not hand them out again while a worker is asking (or if Redis lost the task)."""
    with transaction.atomic():
        ids = list(
            Call.objects.select_for_update(skip_locked=True)
            .filter(state=Call.State.IN_PROGRESS, next_poll_at__lte=now)
            .order_by("next_poll_at")
            .values_list("id", flat=True)[:limit]
        )
        Call.objects.filter(id__in=ids).update(next_poll_at=now + timing.poll_lease())
    return ids


def poll_call(call_id: int) -> None:
    # Each step waits while PostgreSQL is away (calls/pipeline/reconnect.py): the report above
    # all, which this worker alone knows until it is saved.
    what = f"call {call_id}"
    call = reconnecting(
        lambda: (
            Call.objects.select_related("store")
            .filter(id=call_id, state=Call.State.IN_PROGRESS)
            .first()
        ),
        what=what,
    )
    if call is None or not call.provider_call_id:
        return
    try:
        client = client_for(call.store)
    except Exception as exc:  # our side (a key that cannot be decrypted, a bad base URL)
        log.exception("call %s cannot be polled: no provider client", call.id)
        _record_poll_failure(call, error=redact(f"{type(exc).__name__}: {exc}"), kind="internal")
        return
    before = client.requests_made["get_call"]
    try:
        report = client.get_call(call.provider_call_id)
    except ProviderError as exc:
        # A connect failure never reached the provider; anything else cost a request.
        reached = 0 if exc.kind == "retry" else client.requests_made["get_call"] - before
        kind = exc.kind
        if isinstance(exc, InvalidApiKey):
            # The account's key, not this call, is refused: wait for a person to fix it (the
            # lifetime bound still ends the wait) instead of sending every call to review.
            kind = "key"
            pause_store(
                call.store,
                Store.PauseKind.KEY_REJECTED,
                f"the provider rejected the API key ({exc})",
            )
        error = str(exc)
        reconnecting(
            lambda: _record_poll_failure(call, error=error, kind=kind, requests=reached),
            what=what,
        )
    else:
        requests = client.requests_made["get_call"] - before
        reconnecting(lambda: _apply_report(call, report, requests=requests), what=what)


def _apply_report(call: Call, report: CallReport, *, requests: int) -> None:
    now = timezone.now()
    retry = report.retry or 0
    with transaction.atomic():
        locked = _lock_if_in_progress(call.id)
        if locked is None:
            return
        store = locked.store
        new_status = locked.status_changed_at is None or (locked.call_status, locked.retry) != (
            report.call_status,
            retry,
        )
        if new_status:
            locked.status_changed_at = status_began_at(
                updated_at=report.updated_at,
                not_before=locked.last_polled_at or locked.sent_at or locked.created_at,
                now=now,
            )
        assert locked.status_changed_at is not None
        verdict = judge_report(
            call_status=report.call_status,
            dtmf=report.dtmf,
            retry=retry,
            status_since=locked.status_changed_at,
            provider_retries=store.provider_retries,
            retry_delay=store.retry_delay(retry),
            now=now,
        )
        changed = (locked.call_status, locked.dtmf, locked.retry, locked.call_charges) != (
            report.call_status,
            report.dtmf,
            retry,
            report.call_charges,
        )
        locked.call_status = report.call_status
        locked.dtmf = report.dtmf
        locked.retry = retry
        locked.call_charges = report.call_charges
        locked.provider_updated_at = report.updated_at
        locked.poll_count = F("poll_count") + max(requests, 1)
        locked.poll_errors = 0
        locked.last_polled_at = now
        if changed:
            record_event(
                locked,
                CallEvent.Kind.POLLED,
                call_status=report.call_status,
                dtmf=report.dtmf,
                retry=retry,
                call_charges=str(report.call_charges) if report.call_charges is not None else None,
            )
        polled_fields = ["poll_count", "poll_errors", "last_polled_at", "status_changed_at"]
        if verdict.outcome is not None:
            locked.save(update_fields=polled_fields)
            finish(locked, verdict.outcome, now, reason=verdict.reason)
            return
        if _past_lifetime(locked, now):
            locked.save(update_fields=polled_fields)
            finish(locked, Call.Outcome.NEEDS_REVIEW, now, reason=_lifetime_reason(locked))
            return
        locked.next_poll_at = verdict.next_poll_at
        locked.save(
            update_fields=[
                *polled_fields,
                "call_status",
                "dtmf",
                "retry",
                "call_charges",
                "provider_updated_at",
                "next_poll_at",
                "updated_at",
            ]
        )


def _record_poll_failure(call: Call, *, error: str, kind: str, requests: int = 0) -> None:
    """A get_call that told us nothing: ask again later, or give up to review (see below).

    `requests` is how many get_call requests reached the provider (a cost even when failed).
    """
    now = timezone.now()
    with transaction.atomic():
        locked = _lock_if_in_progress(call.id)
        if locked is None:
            return
        locked.poll_errors += 1
        locked.last_error = redact(error)
        locked.poll_count = F("poll_count") + requests
        record_event(locked, CallEvent.Kind.POLL_ERROR, error=locked.last_error, error_kind=kind)
        fields = ["poll_errors", "last_error", "poll_count"]
        if kind == "rejected" and locked.poll_errors >= NOT_FOUND_LIMIT:
            locked.save(update_fields=fields)
            finish(
                locked,
                Call.Outcome.NEEDS_REVIEW,
                now,
                reason=(
                    f"the provider refused {locked.poll_errors} status checks in a row ({error})"
                ),
            )
            return
        if _past_lifetime(locked, now):
            locked.save(update_fields=fields)
            finish(locked, Call.Outcome.NEEDS_REVIEW, now, reason=_lifetime_reason(locked))
            return
        backoff = min(
            timing.POLL_ERROR_BACKOFF * 2 ** (locked.poll_errors - 1), timing.POLL_ERROR_BACKOFF_CAP
        )
        locked.next_poll_at = now + timing.scaled(backoff)
        locked.save(update_fields=[*fields, "next_poll_at", "updated_at"])


def _lock_if_in_progress(call_id: int) -> Call | None:
    """The call, row-locked, if it is still in progress (another poll may have finished it)."""
    return (
        Call.objects.select_for_update(of=("self",))
        .select_related("store")
        .filter(id=call_id, state=Call.State.IN_PROGRESS)
        .first()
    )


def _lifetime(call: Call) -> dt.timedelta:
    store = call.store
    return lifetime_bound(provider_retries=store.provider_retries, retry_delays=store.retry_delays)


def _past_lifetime(call: Call, now: dt.datetime) -> bool:
    return now - (call.sent_at or call.created_at) > _lifetime(call)


def _lifetime_reason(call: Call) -> str:
    bound = _lifetime(call)
    return (
        f"the provider reported no final status within {int(bound.total_seconds())} s of sending "
        f"(last status {call.call_status}, retry {call.retry})"
    )
