"""The rules that turn one get_call report into an outcome or the time of the next poll."""

import datetime as dt

import pytest

from calls.models import Call
from calls.pipeline import timing
from calls.pipeline.outcomes import judge_report, lifetime_bound, status_began_at

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
SENT = NOW - dt.timedelta(minutes=10)
STALE = NOW - timing.scaled(timing.ATTEMPT_TIMEOUT) - dt.timedelta(seconds=1)


def judge(**overrides):
    report = {
        "call_status": 2,
        "dtmf": 1,
        "retry": 0,
        "status_since": NOW - dt.timedelta(seconds=5),
        "provider_retries": 3,
        "retry_delay": 300,
        "now": NOW,
    }
    return judge_report(**{**report, **overrides})


@pytest.mark.parametrize(
    ("dtmf", "outcome"),
    [
        (1, Call.Outcome.CONFIRMED),
        (2, Call.Outcome.CANCELLED),
        (3, Call.Outcome.CALLBACK_REQUESTED),
        (None, Call.Outcome.NO_INPUT),
    ],
)
def test_an_answered_call_is_final_with_the_key_the_customer_pressed(dtmf, outcome):
    verdict = judge(call_status=2, dtmf=dtmf)
    assert verdict.outcome == outcome
    assert verdict.next_poll_at is None


def test_an_unexpected_key_needs_a_persons_review():
    verdict = judge(call_status=2, dtmf=7)
    assert verdict.outcome == Call.Outcome.NEEDS_REVIEW
    assert "pressed 7" in verdict.reason


@pytest.mark.parametrize("status", [3, 4, 5, 6])
def test_an_unanswered_attempt_with_retries_left_is_polled_after_the_retry_delay(status):
    ended = NOW - dt.timedelta(seconds=5)
    verdict = judge(call_status=status, dtmf=None, retry=1, retry_delay=600, status_since=ended)
    assert verdict.outcome is None
    expected = ended + dt.timedelta(seconds=600) + timing.scaled(timing.FIRST_POLL_AFTER)
    assert verdict.next_poll_at == expected


@pytest.mark.parametrize("status", [3, 4, 5, 6])
def test_an_unanswered_last_attempt_is_unreachable(status):
    assert judge(call_status=status, dtmf=None, retry=3).outcome == Call.Outcome.UNREACHABLE


@pytest.mark.parametrize("status", [1, 8])
def test_a_ringing_call_is_asked_again_soon(status):
    verdict = judge(call_status=status, dtmf=None, retry=0)
    assert verdict.outcome is None
    assert verdict.next_poll_at == NOW + timing.scaled(timing.IN_FLIGHT_REPOLL)


def test_a_last_attempt_stuck_at_initiated_is_unreachable_once_stale():
    verdict = judge(call_status=1, dtmf=None, retry=3, status_since=STALE)
    assert verdict.outcome == Call.Outcome.UNREACHABLE


def test_a_call_stuck_at_sip_counts_as_a_dead_attempt_sooner_than_one_ringing():
    stuck_at_sip = NOW - timing.scaled(timing.SIP_TIMEOUT) - dt.timedelta(seconds=1)
    assert judge(call_status=8, dtmf=None, retry=3, status_since=stuck_at_sip).outcome == (
        Call.Outcome.UNREACHABLE
    )
    assert judge(call_status=1, dtmf=None, retry=3, status_since=stuck_at_sip).outcome is None


def test_a_ringing_call_is_asked_again_when_it_would_count_as_stuck_if_that_is_sooner():
    almost = NOW - timing.scaled(timing.SIP_TIMEOUT) + dt.timedelta(seconds=10)
    verdict = judge(call_status=8, dtmf=None, retry=0, status_since=almost)
    assert verdict.next_poll_at == almost + timing.scaled(timing.SIP_TIMEOUT)


def test_an_earlier_attempt_stuck_at_sip_waits_for_the_retry_delay():
    verdict = judge(call_status=8, dtmf=None, retry=0, status_since=STALE, retry_delay=300)
    assert verdict.outcome is None
    # The attempt was over when it had been stuck SIP_TIMEOUT; the next one starts 300 s later.
    attempt_over = STALE + timing.scaled(timing.SIP_TIMEOUT)
    expected = attempt_over + dt.timedelta(seconds=300) + timing.scaled(timing.FIRST_POLL_AFTER)
    assert verdict.next_poll_at == expected


def test_a_next_poll_is_never_in_the_past_when_the_report_comes_late():
    long_ago = SENT + dt.timedelta(seconds=1)
    verdict = judge(call_status=5, dtmf=None, retry=0, status_since=long_ago, retry_delay=10)
    assert verdict.next_poll_at >= NOW + timing.scaled(timing.IN_FLIGHT_REPOLL)


def test_a_providers_updated_at_counts_only_inside_the_window_since_our_last_look():
    last_look = NOW - dt.timedelta(seconds=40)
    inside = NOW - dt.timedelta(seconds=10)
    # Whole seconds: the change happened before the provider's next second began.
    began = status_began_at(updated_at=inside, not_before=last_look, now=NOW)
    assert began == inside + dt.timedelta(seconds=1)
    # In the future, or from before our last look (it never moved): we saw it begin now.
    for untrusted in (NOW + dt.timedelta(hours=1), SENT, None):
        assert status_began_at(updated_at=untrusted, not_before=last_look, now=NOW) == NOW


def test_a_last_attempt_just_seen_ringing_is_never_stale_whatever_updated_at_says():
    # The provider's sample shows updated_at == created_at on a retried call: it cannot be
    # trusted to move. A status seen for the first time began, for us, now.
    since = status_began_at(updated_at=SENT, not_before=NOW - dt.timedelta(seconds=30), now=NOW)
    assert judge(call_status=1, dtmf=None, retry=3, status_since=since).outcome is None


@pytest.mark.parametrize("status", [None, 0, 7])
def test_a_missing_or_undocumented_status_is_asked_again_not_judged(status):
    verdict = judge(call_status=status, dtmf=None)
    assert verdict.outcome is None
    assert verdict.next_poll_at == NOW + timing.scaled(timing.IN_FLIGHT_REPOLL)


def test_the_lifetime_bound_covers_every_retry_delay_and_attempt():
    bound = lifetime_bound(provider_retries=3, retry_delays=[300, 600, 1800])
    assert bound > dt.timedelta(seconds=300 + 600 + 1800 + 4 * timing.ATTEMPT_TIMEOUT)
