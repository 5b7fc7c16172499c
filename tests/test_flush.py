"""The test database after a transactional test: emptied by deleting the rows the test left
(tests/support/flush.py), to the state Django's TRUNCATE-and-post_migrate flush leaves."""

import datetime as dt

from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.contrib.sessions.models import Session
from django.db import connection
from django.utils import timezone

from calls.figures import counters
from calls.models import Call, DailyFigures
from tests.support import flush
from tests.support.pipeline import queue_orders


def test_deleting_the_rows_left_empties_every_table_but_the_content_types_and_permissions(
    transactional_db, store, admin_user
):
    queue_orders(store, "Eid sale", 3)
    assert DailyFigures.objects.exists()  # the calls' trigger counted them
    kept = (ContentType.objects.count(), Permission.objects.count())

    assert flush.delete_rows_left(connection)

    # The calls' DELETE trigger wrote to the figures as they went: they are gone all the same.
    assert flush.rows_left(connection) == {}
    assert not Call.objects.exists() and not DailyFigures.objects.exists()
    assert (ContentType.objects.count(), Permission.objects.count()) == kept
    assert counters.mismatches() == []


def test_more_rows_than_are_cheap_to_delete_are_left_to_djangos_truncate(transactional_db):
    expires = timezone.now() + dt.timedelta(days=1)
    Session.objects.bulk_create(
        Session(session_key=f"s{n:039d}", session_data="", expire_date=expires)
        for n in range(flush.MOST_ROWS_TO_DELETE + 1)
    )

    assert not flush.delete_rows_left(connection)

    assert Session.objects.count() == flush.MOST_ROWS_TO_DELETE + 1  # nothing deleted
