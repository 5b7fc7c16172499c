"""A send or a poll that meets PostgreSQL away waits for it instead of failing.

Once a request has left, only the worker holds the provider's answer (a call id, a status) until
it is saved. A PostgreSQL restart or failover ends the worker's connection under it, and the
write fails; given up, a placed call would wait in `sending` until its lease sent it to review
("may have been placed"), a polled one until its poll lease let another worker ask again (a
minute and more). A task that finds the database away as it starts would wait for those leases
too. So each step is tried again, on a new connection, for as long as a restart takes, well
within the tasks' time limits (calls/tasks.py).

Only the errors after which the whole transaction may be tried again are (OperationalError,
InterfaceError: a connection ended or refused, a server shutting down, a deadlock), and only
outside an enclosing transaction. The writes are the transitions' conditional updates
(calls/transitions.py): one whose commit went through before its connection died finds nothing
left to do when tried again (a sent call's id is looked for first: calls/pipeline/dispatch.py).
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
# leave 30 s beside their request (calls/tasks.py).
RETRY_FOR = 20.0
FIRST_WAIT = 0.1
LONGEST_WAIT = 2.0


def reconnecting(step: Callable[[], T], *, what: str) -> T:
    """`step()`, tried again on a new connection while the database cannot be reached, for up
    to RETRY_FOR seconds; then its error is raised. `what` names it in the log."""
    deadline = time.monotonic() + RETRY_FOR
    wait = FIRST_WAIT
    while True:
        try:
            return step()
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
