"""Emptying the test database after a transactional test (`transaction=True`, `live_server`)
by deleting the rows a test left, instead of Django's TRUNCATE of every table.

Django's TransactionTestCase ends each test with `flush`: one TRUNCATE of every table, then
post_migrate, which makes the content types and permissions again. A TRUNCATE gives every
table, index and TOAST table new files, whether it held rows or not; here (a VM's disk) that
costs about a second after each of the suite's 130-odd transactional tests, which leave rows in
a handful of tables. Deleting those rows ends in the same state, for the next test: every table
empty except the content types and permissions, which post_migrate would only make again the
same (so they are kept, and post_migrate, still sent as Django sends it, finds them in place);
sequences not reset (Django's flush after a test does not reset them either).

A test that leaves many rows (an upload of 100,000) is flushed by Django's TRUNCATE still:
deleting that many costs more than new files would, and leaves dead rows behind.
"""

from __future__ import annotations

from django.core.management import call_command
from django.core.management.sql import emit_post_migrate_signal
from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.test import TransactionTestCase

# Rows made by post_migrate, not by tests: the same after every flush.
KEPT_TABLES = {"django_content_type", "auth_permission"}
# More rows than this in all, and Django's TRUNCATE is the cheaper way.
MOST_ROWS_TO_DELETE = 10_000
# A round deletes what the last left; a trigger (the calls' figures) may write a row as it goes.
ROUNDS = 3

_django_fixture_teardown = TransactionTestCase._fixture_teardown


def rows_left(connection: BaseDatabaseWrapper) -> dict[str, int]:
    """Tables holding rows, with their counts (each counted up to MOST_ROWS_TO_DELETE + 1), in
    one statement."""
    tables = sorted(
        set(connection.introspection.django_table_names(only_existing=True, include_views=False))
        - KEPT_TABLES
    )
    quote = connection.ops.quote_name
    counts = ", ".join(
        f"(SELECT count(*) FROM (SELECT FROM {quote(t)} LIMIT {MOST_ROWS_TO_DELETE + 1}) s)"
        for t in tables
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {counts}")
        row = cursor.fetchone()
    return {table: n for table, n in zip(tables, row, strict=True) if n}


def delete_rows_left(connection: BaseDatabaseWrapper) -> bool:
    """Delete every row the test left (foreign keys are checked at the commit, so in any order);
    False, having deleted nothing, when there are too many for that to be cheap."""
    quote = connection.ops.quote_name
    with transaction.atomic(using=connection.alias):
        for _ in range(ROUNDS):
            left = rows_left(connection)
            if not left:
                return True
            if sum(left.values()) > MOST_ROWS_TO_DELETE:
                transaction.set_rollback(True, using=connection.alias)
                return False
            with connection.cursor() as cursor:
                for table in left:
                    cursor.execute(f"DELETE FROM {quote(table)}")
    raise AssertionError(f"rows left after {ROUNDS} rounds of deleting: {rows_left(connection)}")


def fixture_teardown(self: TransactionTestCase) -> None:
    """TransactionTestCase._fixture_teardown, deleting rows where Django truncates tables."""
    if self.available_apps is not None or self.serialized_rollback or self.reset_sequences:
        return _django_fixture_teardown(self)  # flushes this faster way does not reproduce
    for db_name in self._databases_names(include_mirrors=False):
        if delete_rows_left(connections[db_name]):
            emit_post_migrate_signal(verbosity=0, interactive=False, db=db_name)
        else:
            call_command(
                "flush",
                verbosity=0,
                interactive=False,
                database=db_name,
                reset_sequences=False,
                allow_cascade=False,
                inhibit_post_migrate=False,
            )
    return None
