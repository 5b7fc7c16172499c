"""Under pytest-xdist, each worker's test database is a copy of one database migrated once for
the run, instead of each worker applying every migration itself.

Applying the migrations costs some 6 s of CPU (Django renders the project's state for each
operation) and the workers did it at once, on two cores, before their first test; CREATE
DATABASE ... TEMPLATE copies a migrated database in a fraction of a second.

The first worker to need a database migrates the template (the test database's name, less the
worker's suffix, + "_template"), under a lock every worker takes, and marks it as this run's
(pytest-xdist's testrunuid): a template an earlier run left, perhaps of other migrations, is
never copied. pytest-django then keeps the copy as it finds it (keepdb: migrate has nothing to
apply); each worker drops its copy at its end, and the first to end drops the template too (a
worker needing it after that migrates it again).
"""

from __future__ import annotations

import contextlib
import fcntl
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection


def copying(config: pytest.Config) -> bool:
    """Whether this process's test database is a copy: in a pytest-xdist worker, unless the
    run reuses or re-creates databases by option or runs without migrations."""
    options = ("reuse_db", "create_db", "nomigrations")
    return hasattr(config, "workerinput") and not any(config.getvalue(o) for o in options)


def _names(config: pytest.Config) -> tuple[str, str]:
    """(this worker's test database, the run's template), once pytest-django has named the
    first after the worker."""
    database = connection.settings_dict["TEST"]["NAME"]
    worker = config.workerinput["workerid"]  # type: ignore[attr-defined]
    return database, f"{database.removesuffix(f'_{worker}')}_template"


@contextlib.contextmanager
def _template_lock(template: str) -> Iterator[Path]:
    """Held by one worker at a time; yields the file saying which run the template is of."""
    lock = Path(tempfile.gettempdir()) / f"robodash-{template}.lock"
    with lock.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        yield lock.with_suffix(".run")


def _execute_without_database(*statements: str) -> None:
    with connection.creation._nodb_cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def _migrate_new_database(name: str) -> None:
    quoted = connection.ops.quote_name(name)
    _execute_without_database(
        f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)", f"CREATE DATABASE {quoted}"
    )
    settings = connection.settings_dict
    before = settings["NAME"]
    connection.close()
    settings["NAME"] = name
    try:
        # As Django's create_test_db migrates a test database.
        call_command("migrate", verbosity=0, interactive=False, run_syncdb=True)
    finally:
        connection.close()
        settings["NAME"] = before


def copy_the_migrated_template(config: pytest.Config) -> None:
    """Make this worker's test database a copy of the run's template, migrating that first if
    no worker has yet."""
    database, template = _names(config)
    run = config.workerinput["testrunuid"]  # type: ignore[attr-defined]
    with _template_lock(template) as made_for:
        if not (made_for.exists() and made_for.read_text() == run):
            _migrate_new_database(template)
            made_for.write_text(run)
        quote = connection.ops.quote_name
        _execute_without_database(
            f"DROP DATABASE IF EXISTS {quote(database)} WITH (FORCE)",
            f"CREATE DATABASE {quote(database)} TEMPLATE {quote(template)}",
        )


def drop_the_copy_and_the_template(config: pytest.Config) -> None:
    database, template = _names(config)
    connection.close()
    quote = connection.ops.quote_name
    with _template_lock(template) as made_for:
        _execute_without_database(
            f"DROP DATABASE IF EXISTS {quote(database)} WITH (FORCE)",
            f"DROP DATABASE IF EXISTS {quote(template)} WITH (FORCE)",
        )
        made_for.unlink(missing_ok=True)
