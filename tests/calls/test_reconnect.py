"""calls/pipeline/reconnect.py alone: which errors a send's or a poll's step waits out, and for
how long (tests/test_database_restart.py restarts a real PostgreSQL under the workers)."""

from __future__ import annotations

import logging

import pytest
from django.db import IntegrityError, OperationalError

from calls.pipeline import reconnect


class FailsFirst:
    """A step that raises `error` its first `times` tries, then answers."""

    def __init__(self, error: Exception, times: int) -> None:
        self.error, self.times, self.tries = error, times, 0

    def __call__(self) -> str:
        self.tries += 1
        if self.tries <= self.times:
            raise self.error
        return "saved"


def test_a_step_that_finds_the_database_away_is_tried_again_until_it_answers(caplog) -> None:
    step = FailsFirst(OperationalError("connection is bad: no such file"), times=2)

    with caplog.at_level(logging.WARNING, logger="calls.pipeline.reconnect"):
        assert reconnect.reconnecting(step, what="call 7") == "saved"

    assert step.tries == 3
    assert [r.getMessage()[:40] for r in caplog.records] == [
        "call 7: the database did not answer (con"
    ] * 2


def test_a_database_away_longer_than_a_restart_is_given_up(monkeypatch) -> None:
    monkeypatch.setattr(reconnect, "RETRY_FOR", 0.25)
    step = FailsFirst(OperationalError("the database system is shutting down"), times=100)

    with pytest.raises(OperationalError):
        reconnect.reconnecting(step, what="call 7")

    assert step.tries == 2  # waited 0.1 s after the first; 0.2 s more would pass the 0.25 s


def test_an_error_of_the_data_is_raised_at_once() -> None:
    step = FailsFirst(IntegrityError("duplicate key"), times=1)

    with pytest.raises(IntegrityError):
        reconnect.reconnecting(step, what="call 7")

    assert step.tries == 1


@pytest.mark.django_db
def test_inside_an_enclosing_transaction_the_error_is_raised_at_once() -> None:
    # The transaction is lost with its connection: only its owner may begin it again.
    step = FailsFirst(OperationalError("server closed the connection unexpectedly"), times=1)

    with pytest.raises(OperationalError):
        reconnect.reconnecting(step, what="call 7")

    assert step.tries == 1
