"""WooCommerce's unsigned pings are counted on their connection instead of stored a row each:
the rows earlier pings left (delivery id `ping:…`) become the count and are deleted, so none
shows as the last webhook received."""

from typing import Any

from django.db import migrations, models
from django.db.models import Count, Max


def count_stored_pings(apps: Any, schema_editor: Any) -> None:
    ReceivedWebhook = apps.get_model("shops", "ReceivedWebhook")
    ShopConnection = apps.get_model("shops", "ShopConnection")
    pings = ReceivedWebhook.objects.filter(topic="ping", delivery_id__startswith="ping:")
    for row in pings.values("connection").annotate(count=Count("id"), last=Max("received_at")):
        ShopConnection.objects.filter(pk=row["connection"]).update(
            pings_received=row["count"], last_ping_at=row["last"]
        )
    pings.delete()


class Migration(migrations.Migration):
    dependencies = [
        ("shops", "0003_last_webhook_from_deliveries"),
    ]

    operations = [
        migrations.AddField(
            model_name="shopconnection",
            name="last_ping_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="shopconnection",
            name="pings_received",
            field=models.PositiveBigIntegerField(default=0),
        ),
        migrations.RunPython(count_stored_pings, migrations.RunPython.noop),
    ]
