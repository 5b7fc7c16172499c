import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("calls", "0006_orders_from_calls")]

    operations = [
        migrations.AlterField(
            model_name="call",
            name="shop_order",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="calls",
                to="calls.order",
            ),
        ),
        migrations.AlterField(
            model_name="callevent",
            name="kind",
            field=models.CharField(
                choices=[
                    ("created", "Created"),
                    ("rescheduled", "Rescheduled"),
                    ("claimed", "Claimed for sending"),
                    ("sent", "Accepted by provider"),
                    ("send_retry", "Provider unreachable, will retry"),
                    ("polled", "Status checked"),
                    ("poll_error", "Status check failed"),
                    ("final", "Final outcome"),
                    ("withdrawn", "Withdrawn"),
                    ("assigned", "Claimed by agent"),
                    ("handled", "Marked handled"),
                    ("callback", "Called again"),
                    ("decided", "Order decided by hand"),
                    ("released", "Claim released"),
                    ("taken_over", "Taken over from another agent"),
                ],
                max_length=16,
            ),
        ),
    ]
