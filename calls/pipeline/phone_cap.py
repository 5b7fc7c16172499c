"""A store's cap on the calls robodash places to one phone a day (max_calls_per_phone_per_day).

Checked when a worker claims a call (calls/pipeline/dispatch.py), inside the claim's transaction:
the phone's lock (a transaction advisory lock on the store and the phone) is taken, the calls of
that store to that phone claimed since the start of the day in the store's zone are counted, and a
call past the cap is moved to the first calling time of the next day, with a `rescheduled` event
saying so. The lock is held until the claim commits, by when the call counted is `sending`: a
second worker claiming the phone's next call waits for it and counts it, so two workers cannot
both place the one call too many.

Every kind of call counts (verification, notice, re-attempts, by hand): a call placed is one
claimed for sending (`claimed_at` today) that has not been put back unsent (requeued: no
`claimed_at`) or refused by the provider outright (failed: the phone never rang). Found by
call_phone_idx: one phone has few calls.

A store without a cap pays nothing: no lock, no count.
"""

from __future__ import annotations

import datetime as dt

from django.db import connection

from calls import transitions
from calls.models import Call, CallEvent, Store

# pg_advisory_xact_lock(PHONE_LOCK, hashtext('<store id>:<phone>')): one claim per phone at a time.
# Two stores' phones sharing a hash only wait for each other, never miscount.
PHONE_LOCK = 0x50484F4E  # "PHON"

# Calls that did not ring the phone, though claimed once.
_NOT_PLACED = (Call.Outcome.FAILED, Call.Outcome.WITHDRAWN)


def day_bounds(store: Store, at: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The start and end of `at`'s day in the store's zone (aware)."""
    day = at.astimezone(store.zone).date()
    start = dt.datetime.combine(day, dt.time(0), store.zone)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), store.zone)
    return start, end


def calls_placed_today(store: Store, phone: str, at: dt.datetime) -> int:
    """The calls of `store` placed to `phone` on `at`'s day in the store's zone."""
    start, end = day_bounds(store, at)
    return (
        Call.objects.filter(store=store, phone=phone, claimed_at__gte=start, claimed_at__lt=end)
        .exclude(state=Call.State.QUEUED)
        .exclude(outcome__in=_NOT_PLACED)
        .count()
    )


def lock_phone(store: Store, phone: str) -> None:
    """Take the phone's lock until the transaction ends."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [PHONE_LOCK, f"{store.pk}:{phone}"]
        )


def defer_past_daily_cap(call: Call, store: Store, now: dt.datetime) -> bool:
    """Whether `call`, about to be claimed, is past its store's daily cap for its phone: if so
    it is moved to the next day's first calling time (and the caller does not send it). Run
    inside the claim's transaction, with the call's row locked; a store without a cap returns
    False at once."""
    cap = store.max_calls_per_phone_per_day
    if cap is None:
        return False
    lock_phone(store, call.phone)
    placed = calls_placed_today(store, call.phone, now)
    if placed < cap:
        return False
    start = store.next_day_calling_time(now)
    Call.objects.filter(id=call.id).update(scheduled_for=start, enqueued_at=None)
    transitions.record_event(
        call,
        CallEvent.Kind.RESCHEDULED,
        phone_cap=cap,
        scheduled_for=start.isoformat(),
    )
    return True
