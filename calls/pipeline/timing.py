"""The pipeline's clock: every fixed duration, in the provider's real seconds, scaled for tests.

The figures follow the provider's documented behaviour: a call is pushed to SIP (status 8), is
initiated and rings (status 1), and only shows status 2 once the customer has pressed a key and
the call has ended; an unanswered attempt is retried after the store's retry delay.
"""

import datetime as dt

from django.conf import settings

# After an attempt starts, when to ask first: an unanswered attempt is over by then (SIP plus
# ringing, under a minute), and about half of the answered ones (which show 2 only after the
# message has played and a key was pressed). Earlier costs a request per answered call.
FIRST_POLL_AFTER = 70.0
# While the provider still shows 8 or 1 the attempt is ringing or talking: ask again this often.
# It bounds how late we learn an answered call's outcome.
IN_FLIGHT_REPOLL = 45.0
# An attempt still at 8 or 1 this long after its last change is over (the provider retries both).
# It must outlast SIP, ringing and the whole talk of an answered call (about 140 s at most).
ATTEMPT_TIMEOUT = 180.0
# Status 8 (pushed to SIP) turns into 1 within seconds; an attempt still at 8 after this is stuck
# there, and the provider will retry it.
SIP_TIMEOUT = 60.0
# Added to a call's expected life (delays and attempts) before it goes to needs_review.
FINALISE_GRACE = 600.0
# First wait after a failed get_call; doubles with each failure in a row, up to the cap.
POLL_ERROR_BACKOFF = 15.0
POLL_ERROR_BACKOFF_CAP = 300.0
# A connect failure on `calls` (nothing was sent) is retried after this, doubling up to the cap,
# for as long as it takes: the order is kept, and the call page shows the last error.
SEND_RETRY_BACKOFF = 10.0
SEND_RETRY_BACKOFF_CAP = 300.0
# A task handed to the broker but not run by then is handed over again (Redis may have lost it).
ENQUEUE_LEASE = 60.0


def scaled(seconds: float) -> dt.timedelta:
    return dt.timedelta(seconds=seconds / settings.ROBODASH_TIME_SCALE)


def request_bound() -> dt.timedelta:
    """Longest one provider request can take; leases must outlast it whatever the scale."""
    return dt.timedelta(
        seconds=settings.ROBOCALL_CONNECT_TIMEOUT + settings.ROBOCALL_READ_TIMEOUT + 5
    )


def sending_lease() -> dt.timedelta:
    """A call in `sending` longer than this lost its worker mid-request."""
    return request_bound() + dt.timedelta(seconds=5)


def enqueue_lease() -> dt.timedelta:
    return max(scaled(ENQUEUE_LEASE), dt.timedelta(seconds=3))


def poll_lease() -> dt.timedelta:
    # A get_call may be retried twice on a gateway error (calls/pipeline/provider.py): three
    # requests.
    return max(scaled(ENQUEUE_LEASE), 3 * request_bound())
