"""The migration that counts WooCommerce's pings on their connection: the rows earlier pings left
become the count, and the shop's real deliveries stay."""

from __future__ import annotations

import datetime as dt

import pytest

from shops.models import ReceivedWebhook, ShopConnection
from tests.support import migrations

BEFORE = [("shops", "0003_last_webhook_from_deliveries")]
T0 = dt.datetime(2026, 11, 1, 7, 0, tzinfo=dt.UTC)


@pytest.mark.django_db(transaction=True)
def test_stored_pings_become_the_connections_count_and_real_deliveries_stay() -> None:
    latest = migrations.latest()
    try:
        apps = migrations.migrate_to(BEFORE)
        store = apps.get_model("calls", "Store").objects.create(name="KK", api_key_encrypted="x")
        woo = apps.get_model("shops", "ShopConnection").objects.create(
            store=store, kind="woocommerce"
        )
        Received = apps.get_model("shops", "ReceivedWebhook")
        for n in range(3):
            Received.objects.create(
                connection=woo,
                delivery_id=f"ping:{n}",
                topic="ping",
                received_at=T0 + dt.timedelta(minutes=n),
            )
        Received.objects.create(connection=woo, delivery_id="77", topic="order.created")

        migrations.migrate_to(latest)

        woo = ShopConnection.objects.get()
        assert (woo.pings_received, woo.last_ping_at) == (3, T0 + dt.timedelta(minutes=2))
        assert list(ReceivedWebhook.objects.values_list("delivery_id", flat=True)) == ["77"]
    finally:
        migrations.migrate_to(latest)
