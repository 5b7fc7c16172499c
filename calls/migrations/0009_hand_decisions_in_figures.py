"""Decisions by hand in the figures: the call an agent decided after carries the decision, and
the rolled-up days gain the decided counts (equal to the key presses where nobody decided by
hand; the few days with a decision by hand are dropped, to be rolled up again)."""

import zoneinfo
from typing import Any

from django.db import migrations, models


def forward(apps: Any, schema_editor: Any) -> None:
    Call = apps.get_model("calls", "Call")
    Order = apps.get_model("calls", "Order")
    DailyFigures = apps.get_model("calls", "DailyFigures")
    RolledUpDay = apps.get_model("calls", "RolledUpDay")
    DailyFigures.objects.update(
        decided_confirmed=models.F("confirmed"), decided_cancelled=models.F("cancelled")
    )
    reopened = set()
    for order in Order.objects.filter(decided_by__isnull=False).only("id", "decision"):
        call = Call.objects.filter(shop_order=order, state="final").order_by("-id").first()
        if call is not None:
            Call.objects.filter(pk=call.pk).update(hand_decision=order.decision)
            reopened.add(call.created_at)
    for day, zone in RolledUpDay.objects.values_list("day", "zone"):
        if any(at.astimezone(zoneinfo.ZoneInfo(zone)).date() == day for at in reopened):
            DailyFigures.objects.filter(day=day).delete()
            RolledUpDay.objects.filter(day=day).delete()


class Migration(migrations.Migration):

    dependencies = [
        ('calls', '0008_reattempt_policy'),
    ]

    operations = [
        migrations.AddField(
            model_name='call',
            name='hand_decision',
            field=models.CharField(blank=True, max_length=16),
        ),
        migrations.AddField(
            model_name='dailyfigures',
            name='decided_by_hand',
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='dailyfigures',
            name='decided_cancelled',
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='dailyfigures',
            name='decided_confirmed',
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='dailyfigures',
            name='decided_unanswered',
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.RunPython(forward, migrations.RunPython.noop),
    ]
