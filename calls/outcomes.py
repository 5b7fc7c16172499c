"""What a get_call report means: final or not, which outcome, and when to ask next.

Pure functions of the provider's fields, the store's retry settings and the clock, so the rules
are tested without any I/O. The provider's statuses (its documentation):
1 initiated, 2 answered (dtmf 1 confirm, 2 cancel, 3 callback, null no input), 3 congestion,
4 busy, 5 no answer, 6 hangup, 8 pushed to SIP. It retries 1/3/4/5/6/8 itself, up to the
store's provider retries, after the store's retry delays; `retry` counts retries done so far.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from calls import timing
from calls.models import Call

ANSWERED = 2
IN_FLIGHT = frozenset({1, 8})  # still ringing or talking, or an attempt that timed out there
UNANSWERED_RESULTS = frozenset({3, 4, 5, 6})
STATUS_MEANINGS = {
    1: "Initiated (awaiting pickup)",
    2: "Answered",
    3: "Congestion",
    4: "Busy",
    5: "No answer",
    6: "Hangup",
    8: "Pushed to SIP",
}
DTMF_OUTCOMES = {
    1: Call.Outcome.CONFIRMED,
    2: Call.Outcome.CANCELLED,
    3: Call.Outcome.CALLBACK_REQUESTED,
    None: Call.Outcome.NO_INPUT,
}


@dataclass(frozen=True)
class Verdict:
    outcome: str | None  # None: not final yet
    next_poll_at: dt.datetime | None
    reason: str = ""


def judge_report(
    *,
    call_status: int | None,
    dtmf: int | None,
    retry: int,
    updated_at: dt.datetime | None,
    provider_retries: int,
    retry_delay: float,
    sent_at: dt.datetime,
    now: dt.datetime,
) -> Verdict:
    """Decide from one get_call report. `retry_delay` is the store's delay after attempt `retry`."""
    retries_left = retry < provider_retries
    # The provider's own clock says when the status last changed; a time in the future is not
    # believed, and a clock behind ours cannot put a change before we sent the call.
    changed_at = now if updated_at is None or updated_at > now else max(updated_at, sent_at)

    if call_status == ANSWERED:
        if dtmf in DTMF_OUTCOMES:
            return Verdict(DTMF_OUTCOMES[dtmf], None)
        return Verdict(
            Call.Outcome.NEEDS_REVIEW,
            None,
            f"the customer pressed {dtmf}, which means nothing here",
        )

    if call_status in IN_FLIGHT:
        stale = now - changed_at >= timing.scaled(timing.ATTEMPT_TIMEOUT)
        if not stale:
            return Verdict(None, now + timing.scaled(timing.IN_FLIGHT_REPOLL))
        if not retries_left:
            return Verdict(Call.Outcome.UNREACHABLE, None)
        # That attempt timed out at 8 or 1; the provider tries again after the delay.
        attempt_over = changed_at + timing.scaled(timing.ATTEMPT_TIMEOUT)
        return Verdict(None, _next_attempt_poll(attempt_over, retry_delay, now))

    if call_status in UNANSWERED_RESULTS:
        if not retries_left:
            return Verdict(Call.Outcome.UNREACHABLE, None)
        return Verdict(None, _next_attempt_poll(changed_at, retry_delay, now))

    return Verdict(
        Call.Outcome.NEEDS_REVIEW, None, f"the provider reported an unknown status {call_status!r}"
    )


def _next_attempt_poll(
    attempt_ended: dt.datetime, retry_delay: float, now: dt.datetime
) -> dt.datetime:
    """The next attempt starts `retry_delay` after the last ended: ask once it should be over."""
    planned = (
        attempt_ended + dt.timedelta(seconds=retry_delay) + timing.scaled(timing.FIRST_POLL_AFTER)
    )
    return max(planned, now + timing.scaled(timing.IN_FLIGHT_REPOLL))


def lifetime_bound(*, provider_retries: int, retry_delays: list[int]) -> dt.timedelta:
    """How long after sending a call may stay unfinished before it needs a person's review."""
    delays = sum(retry_delays[:provider_retries])
    attempts = (provider_retries + 1) * (timing.ATTEMPT_TIMEOUT + timing.FIRST_POLL_AFTER)
    return dt.timedelta(seconds=delays) + timing.scaled(attempts + timing.FINALISE_GRACE)
