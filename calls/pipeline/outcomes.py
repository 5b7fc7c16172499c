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

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from calls.models import Call
from calls.pipeline import timing

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


PROVIDER_CLOCK_RESOLUTION = dt.timedelta(seconds=1)


@dataclass(frozen=True)
class Verdict:
    outcome: str | None  # None: not final yet
    next_poll_at: dt.datetime | None
    reason: str = ""


def status_began_at(
    *, updated_at: dt.datetime | None, not_before: dt.datetime, now: dt.datetime
) -> dt.datetime:
    """When a status we see for the first time began: the provider's `updated_at` when it falls
    between our previous look (`not_before`) and now, else now.

    The provider's documentation shows `updated_at` equal to `created_at` on a retried call, so
    it cannot be trusted to move; a time outside the window is ignored, and "now" errs on the
    side of waiting longer before judging an attempt stale.
    """
    if updated_at is None:
        return now
    # Its clock has whole seconds: the change happened before the next one. Erring late keeps
    # a long ring and talk from looking like a dead attempt.
    changed = updated_at + PROVIDER_CLOCK_RESOLUTION
    return changed if not_before <= changed <= now else now


def judge_report(
    *,
    call_status: int | None,
    dtmf: int | None,
    retry: int,
    status_since: dt.datetime,
    provider_retries: int,
    retry_delay: float,
    now: dt.datetime,
) -> Verdict:
    """Decide from one get_call report. `status_since` is when the status we see began
    (`status_began_at`), `retry_delay` the store's delay after attempt `retry`."""
    retries_left = retry < provider_retries

    if call_status == ANSWERED:
        if dtmf in DTMF_OUTCOMES:
            return Verdict(DTMF_OUTCOMES[dtmf], None)
        return Verdict(
            Call.Outcome.NEEDS_REVIEW,
            None,
            f"the customer pressed {dtmf}, which means nothing here",
        )

    if call_status in UNANSWERED_RESULTS:
        if not retries_left:
            return Verdict(Call.Outcome.UNREACHABLE, None)
        return Verdict(None, _next_attempt_poll(status_since, retry_delay, now))

    # 8 or 1: ringing or talking, or an attempt that timed out there. Anything else (a null or
    # undocumented status) is taken as not final either: the lifetime bound ends it if need be.
    repoll = now + timing.scaled(timing.IN_FLIGHT_REPOLL)
    if call_status not in IN_FLIGHT:
        return Verdict(None, repoll)
    timeout = timing.scaled(timing.SIP_TIMEOUT if call_status == 8 else timing.ATTEMPT_TIMEOUT)
    if now - status_since < timeout:
        # Ask again in a while, or as soon as it would count as stuck if that comes first.
        return Verdict(None, min(repoll, status_since + timeout))
    if not retries_left:
        return Verdict(Call.Outcome.UNREACHABLE, None)
    # That attempt timed out at 8 or 1; the provider tries again after the delay.
    attempt_over = status_since + timeout
    return Verdict(None, _next_attempt_poll(attempt_over, retry_delay, now))


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


# --- In words, for merchants -------------------------------------------------------------------
# The provider's codes as a merchant reads them (its documentation's table of call statuses and
# key presses). The raw numbers stay on the call page, in its section for support.

STATUS_WORDS = {
    1: gettext_lazy("Ringing"),
    2: gettext_lazy("Answered"),
    3: gettext_lazy("Network busy"),
    4: gettext_lazy("Line busy"),
    5: gettext_lazy("Not picked up"),
    6: gettext_lazy("Hung up early"),
    8: gettext_lazy("Waiting to be dialled"),
}
KEY_WORDS = {
    1: gettext_lazy("pressed 1 (confirm)"),
    2: gettext_lazy("pressed 2 (cancel)"),
    3: gettext_lazy("pressed 3 (call back)"),
}


def status_in_words(call_status: int | None) -> str:
    if call_status is None:
        return _("No answer from the provider yet")
    if call_status in STATUS_WORDS:
        return str(STATUS_WORDS[call_status])
    return _("Unknown provider status %(status)s") % {"status": call_status}


def key_in_words(dtmf: int | None) -> str:
    if dtmf is None:
        return _("pressed nothing")
    if dtmf in KEY_WORDS:
        return str(KEY_WORDS[dtmf])
    return _("pressed %(key)s (not a choice)") % {"key": dtmf}


def provider_answer_in_words(call_status: int | None, dtmf: int | None) -> str:
    """'Answered, pressed 1 (confirm)'; 'Line busy'; a key press only counts when answered."""
    words = status_in_words(call_status)
    if call_status == ANSWERED:
        return _("%(status)s, %(key)s") % {"status": words, "key": key_in_words(dtmf)}
    return words
