# The rules' preview (calls/rule_preview.py) reads a store's last 30 days of orders and each
# phone's parcels' ends from these two indexes alone. Built CONCURRENTLY, so orders keep coming in
# while a million rows are indexed (outside a transaction).

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("calls", "0028_order_duplicates_placed_rows"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="order",
            index=models.Index(
                condition=models.Q(("rejected_reason", "")),
                fields=["store", "created_at"],
                include=("phone", "amount", "delivery", "placed_at", "arrived_at"),
                name="order_rule_window_idx",
            ),
        ),
        AddIndexConcurrently(
            model_name="order",
            index=models.Index(
                condition=models.Q(("delivery__in", ["delivered", "returned"])),
                fields=["store", "phone", "delivery", "delivery_learnt_at"],
                name="order_phone_end_idx",
            ),
        ),
    ]
