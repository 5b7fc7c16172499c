"""The test session's PostgreSQL and Redis: the ones given, the machine's, or robodash's own.

Loaded with `-p robodash.pytest_plugin` (pyproject's addopts). Before pytest-django reads the
settings, robodash.embedded.servers_for_tests() chooses each server (TEST_DATABASE_URL /
TEST_BROKER_URL, else the machine's on 127.0.0.1, else a throw-away one of robodash's own that
is stopped when the session ends). The choice becomes DATABASE_URL and CELERY_BROKER_URL for
the settings and for every process the tests start (workers, beat, the devserver's children),
with ROBODASH_ALLOW_PRIVATE_TARGETS on unless set (the shop stand-ins are on 127.0.0.1). Under
pytest-xdist (`-n`), the workers share the servers the main process chose, each with a test
database and a Redis database of its own.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Generator

import pytest

from robodash import embedded

_servers = pytest.StashKey[contextlib.ExitStack]()
_said = pytest.StashKey[list[str]]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> Generator[None, None, None]:
    # A wrapper runs before every plain implementation, pytest-django's set-up among them.
    stack = contextlib.ExitStack()
    early_config.stash[_servers] = stack
    servers = stack.enter_context(embedded.servers_for_tests())
    # pytest-xdist's workers inherit this environment: they use the servers chosen here, not
    # servers of their own. Each has its own test database (pytest-django names it after the
    # worker) and its own Redis database.
    os.environ["TEST_DATABASE_URL"] = servers.database_url
    os.environ["TEST_BROKER_URL"] = servers.broker_url
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    os.environ["DATABASE_URL"] = servers.database_url
    os.environ["CELERY_BROKER_URL"] = embedded.broker_url_of_worker(
        servers.broker_url, int(worker.removeprefix("gw"))
    )
    # The shop stand-ins listen on 127.0.0.1: the workers the tests start must reach them.
    os.environ.setdefault("ROBODASH_ALLOW_PRIVATE_TARGETS", "true")
    early_config.stash[_said] = servers.said
    return (yield)


def pytest_report_header(config: pytest.Config) -> list[str]:
    return config.stash.get(_said, [])


def pytest_unconfigure(config: pytest.Config) -> None:
    stack = config.stash.get(_servers, None)
    if stack is not None:
        stack.close()


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    # Under pytest-xdist the main process captures output outside the tests for the whole
    # session and prints what it caught (Django's start-up log lines) after the closing
    # "N passed" line, where a reader of the last line would miss the count: print it now.
    plugins = session.config.pluginmanager
    capture, terminal = plugins.getplugin("capturemanager"), plugins.getplugin("terminalreporter")
    if capture is not None and terminal is not None and plugins.hasplugin("dsession"):
        terminal.write("".join(capture.read_global_capture()))
