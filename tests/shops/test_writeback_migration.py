"""The migration to one versioned write-back per order and connection: an order's rows for a
connection become its newest, knowing what was last told, and the sentences earlier sends left
become codes the order page words."""

from __future__ import annotations

import pytest

from shops.models import WriteBack
from tests.shops.test_outbox import shop_order
from tests.support import migrations

BEFORE = [("shops", "0004_woocommerce_pings_counted")]


@pytest.mark.django_db(transaction=True)
def test_an_orders_rows_for_a_connection_become_one_and_their_sentences_become_codes(store):
    latest = migrations.latest()
    # The orders first, as today's code makes them (the calls app is not migrated back).
    twice = shop_order(store, "shopify", "555", "#1001")
    once = shop_order(store, "woocommerce", "727", "#1002")
    try:
        apps = migrations.migrate_to(BEFORE)
        Connection = apps.get_model("shops", "ShopConnection")
        OldWriteBack = apps.get_model("shops", "WriteBack")
        shopify = Connection.objects.create(store_id=store.pk, kind="shopify")
        woo = Connection.objects.create(store_id=store.pk, kind="woocommerce")
        told = OldWriteBack.objects.create(
            order_id=twice.pk,
            connection=shopify,
            event="no_answer",
            state="delivered",
            result="tagged robocall-no-answer",
        )
        newest = OldWriteBack.objects.create(
            order_id=twice.pk, connection=shopify, event="confirmed", state="failed"
        )
        noted = OldWriteBack.objects.create(
            order_id=once.pk,
            connection=woo,
            event="cancelled",
            state="delivered",
            result="order note added; order status set to cancelled",
        )
        unknown = OldWriteBack.objects.create(
            order_id=once.pk, connection=shopify, event="cancelled", result="something else"
        )

        migrations.migrate_to(latest)

        rows = {row.pk: row for row in WriteBack.objects.all()}
        assert set(rows) == {newest.pk, noted.pk, unknown.pk}  # `told` merged into `newest`
        assert told.pk not in rows
        merged = rows[newest.pk]
        assert (merged.event, merged.state, merged.version) == ("confirmed", "failed", 2)
        assert (merged.told_event, merged.told_version, merged.result) == ("no_answer", 1, [])
        assert rows[noted.pk].result == [
            {"code": "note_added"},
            {"code": "status_set", "status": "cancelled"},
        ]
        assert rows[noted.pk].summary() == "order note added; order status set to cancelled"
        assert (rows[noted.pk].version, rows[noted.pk].told_event) == (1, "cancelled")
        assert rows[unknown.pk].result == [] and rows[unknown.pk].summary() == ""
    finally:
        migrations.migrate_to(latest)


@pytest.mark.parametrize(
    ("sentence", "steps"),
    [
        ("tagged robocall-confirmed", [{"code": "tagged", "tags": ["robocall-confirmed"]}]),
        ("tagged a, b", [{"code": "tagged", "tags": ["a", "b"]}]),
        ("no tag set", [{"code": "no_tag"}]),
        ("order note written", [{"code": "note_written"}]),
        (
            "order note already there (an earlier answer was lost)",
            [{"code": "note_already_there"}],
        ),
        ("delivered (HTTP 204)", [{"code": "delivered", "status": 204}]),
        ("The shop said: call 0300 now", []),
    ],
    ids=["tag", "tags", "no-tag", "note", "note-there", "webhook", "unknown"],
)
def test_each_sentence_an_earlier_send_left_becomes_its_steps(sentence, steps):
    from importlib import import_module

    migration = import_module("shops.migrations.0005_write_back_per_order_and_connection")

    assert migration.steps_of(sentence) == steps
