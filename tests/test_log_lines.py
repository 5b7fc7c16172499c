"""What the processes write to their console: a refused request is one line, a fault keeps its
traceback (the filters of robodash/settings.py's LOGGING, on the handler they configure)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from robodash.log_filters import RefusalsOnOneLine


@pytest.fixture
def console() -> Iterator[io.StringIO]:
    """What the configured console handler writes, filters and all."""
    handler = next(h for h in logging.getLogger().handlers if h.get_name() == "console")
    assert isinstance(handler, logging.StreamHandler)
    written = io.StringIO()
    before = handler.setStream(written)
    try:
        yield written
    finally:
        handler.setStream(before)


@pytest.mark.django_db
def test_a_page_refused_to_an_agent_is_one_log_line_without_a_traceback(
    client, agent_user, console
):
    client.force_login(agent_user)

    assert client.get("/campaigns/new/").status_code == 403

    lines = console.getvalue().splitlines()
    assert [line for line in lines if "django.request" in line] == [
        next(line for line in lines if "Forbidden (Permission denied): /campaigns/new/" in line)
    ]
    assert "Traceback" not in console.getvalue()


def test_djangos_lines_reach_only_the_filtered_console_even_with_debug_on():
    # Django's default logging adds a console handler of its own to "django" (active with
    # DEBUG, as in make run) that would print a refusal's traceback, and unredacted.
    for name in ("django", "django.request", "django.security"):
        assert logging.getLogger(name).handlers == [], name
        assert logging.getLogger(name).propagate, name


def _record(status: int) -> logging.LogRecord:
    try:
        raise RuntimeError("the exception Django logs with the response")
    except RuntimeError:
        import sys

        record = logging.LogRecord(
            "django.request", logging.ERROR, __file__, 1, "status %s", (status,), sys.exc_info()
        )
    record.status_code = status
    return record


def test_a_server_error_keeps_its_traceback_and_a_refusal_loses_it():
    server_error, refusal = _record(500), _record(404)

    assert RefusalsOnOneLine().filter(server_error) and RefusalsOnOneLine().filter(refusal)

    formatter = logging.Formatter()
    assert "Traceback" in formatter.format(server_error)
    assert formatter.format(refusal) == "status 404"
