# A finished campaign's end, shown on the campaign pages (calls/views/campaigns.py finished_at):
# the last finalized_at of its calls, one step back along this index. Built CONCURRENTLY, so
# calls keep flowing while ten million rows are indexed (outside a transaction).

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("calls", "0023_order_search"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="call",
            index=models.Index(fields=["campaign", "finalized_at"], name="call_campaign_finalized_idx"),
        ),
    ]
