"""A WooCommerce connection's mapping of order statuses to the parcel's state (order.updated):
existing connections get the defaults, completed -> delivered and refunded -> returned."""

import shops.models
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('shops', '0005_write_back_per_order_and_connection'),
    ]

    operations = [
        migrations.AddField(
            model_name='shopconnection',
            name='delivery_statuses',
            field=models.JSONField(blank=True, default=shops.models.default_delivery_statuses),
        ),
    ]
