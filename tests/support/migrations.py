"""The migration tests' past: a schema of an earlier migration, data in it, then the migrations
that follow, run for real.

A past a few migrations back is reached by unapplying them on the test database, which a
`finally: migrate_to(latest)` applies again. A past far back (calls 0004, 0008) is built in a
database of its own (the `past_database` fixture, tests/conftest.py), forward from empty, as
every real database got there, and the test database stays at the latest schema: Django renders
the project's state before each migration it unapplies, so going back twenty migrations from the
latest took 14 s, applying them to an empty database 2 s (a few back, unapplying is cheaper than
starting from empty). The forward migration to the latest costs the same either way.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from django.db import connection
from django.db.migrations.executor import MigrationExecutor

Targets = list[tuple[str, str]]


def latest() -> Targets:
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


def migrate_to(targets: Targets) -> Any:
    """Migrate the database to `targets`; the app registry of the schema there."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def create_past_database() -> str:
    """A new database beside the test database (the test database's name + "_past")."""
    name = f"{connection.settings_dict['NAME']}_past"
    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {connection.ops.quote_name(name)} WITH (FORCE)")
        cursor.execute(f"CREATE DATABASE {connection.ops.quote_name(name)}")
    return name


def drop_database(name: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {connection.ops.quote_name(name)} WITH (FORCE)")


@contextlib.contextmanager
def on_empty_database(name: str) -> Iterator[None]:
    """The default connection on database `name`, emptied first (its schema made again, which,
    unlike a new database, costs no checkpoint), for the block."""
    settings = connection.settings_dict
    test_database = settings["NAME"]
    connection.close()
    settings["NAME"] = name
    try:
        with connection.cursor() as cursor:
            cursor.execute("DROP SCHEMA public CASCADE")
            cursor.execute("CREATE SCHEMA public")
        yield
    finally:
        connection.close()
        settings["NAME"] = test_database
