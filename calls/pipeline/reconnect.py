"""A worker's write of what the provider answered, tried again while PostgreSQL is away.

Once a request has left, only the worker holds the provider's answer (a call id, a status) until
it is saved. A PostgreSQL restart or failover ends the worker's connection under it, and the
write fails; given up, a placed call would wait in `sending` until its lease sent it to review
("may have been placed"), a polled one until its poll lease let another worker ask again. So the
write is tried again, on a new connection, for as long as a restart takes, well within the
task's time limit (calls/tasks.py).

Only the errors after which the whole transaction may be tried again are (OperationalError,
InterfaceError: a connection ended or refused, a server shutting down, a deadlock), and only
outside an enclosing transaction. The writes are the transitions' conditional updates
(calls/transitions.py): one whose commit went through before its connection died finds nothing
left to do when tried again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import InterfaceError, OperationalError, connection

from calls.redaction import redact

log = logging.getLogger(__name__)

T = TypeVar("T")

# A restart takes a second or two, a failover up to tens; the send and poll tasks' time limits
# leave 30 s after their request (calls/tasks.py).
RETRY_FOR = 20.0
FIRST_WAIT = 0.1
LONGEST_WAIT = 2.0


def write_when_reachable(write: Callable[[], T], *, what: str) -> T:
    """`write()`, tried again on a new connection while the database cannot be reached, for up
    to RETRY_FOR seconds; then its error is raised. `what` names the write in the log."""
    deadline = time.monotonic() + RETRY_FOR
    wait = FIRST_WAIT
    while True:
        try:
            return write()
        except (OperationalError, InterfaceError) as exc:
            if connection.in_atomic_block or time.monotonic() + wait > deadline:
                raise
            reason = redact(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            log.warning(
                "%s: the database did not answer (%s); trying again in %.1f s", what, reason, wait
            )
        connection.close()  # the connection PostgreSQL ended: the next try opens a new one
        time.sleep(wait)
        wait = min(wait * 2, LONGEST_WAIT)
