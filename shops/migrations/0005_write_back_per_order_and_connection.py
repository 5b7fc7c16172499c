"""One write-back row per (order, connection), versioned, with what the shop was last told, and
each send's result kept as codes rather than an English sentence.

An order told twice (no answer, then decided by hand) had a row per event: the rows of a pair
become its newest one, at the version their count makes, knowing what the newest delivered one
told. The sentences earlier sends left ("tagged robocall-confirmed", "order note added; order
status set to cancelled") become the steps WriteBack.summary words; one not recognised is
dropped (a sentence only robodash wrote, so nothing is lost but its wording)."""

import re
from typing import Any

from django.db import migrations, models

SENTENCES = [
    (re.compile(r"^tagged (?P<tags>.+)$"), "tagged"),
    (re.compile(r"^no tag set$"), "no_tag"),
    (re.compile(r"^order note written$"), "note_written"),
    (re.compile(r"^order note added$"), "note_added"),
    (re.compile(r"^order note already there \(an earlier answer was lost\)$"), "note_already_there"),
    (re.compile(r"^order status set to (?P<status>.+)$"), "status_set"),
    (re.compile(r"^delivered \(HTTP (?P<status>\d{3})\)$"), "delivered"),
]


def steps_of(sentence: str) -> list[dict[str, Any]]:
    """The steps an earlier send's sentence names, e.g. "order note added; order status set to
    cancelled" -> [{"code": "note_added"}, {"code": "status_set", "status": "cancelled"}]."""
    steps: list[dict[str, Any]] = []
    for part in sentence.split("; "):
        for pattern, code in SENTENCES:
            if match := pattern.match(part.strip()):
                step: dict[str, Any] = {"code": code, **match.groupdict()}
                if "tags" in step:
                    step["tags"] = step["tags"].split(", ")
                if code == "delivered":
                    step["status"] = int(step["status"])
                steps.append(step)
                break
    return steps


def one_row_per_order_and_connection(apps: Any, schema_editor: Any) -> None:
    WriteBack = apps.get_model("shops", "WriteBack")
    for row in WriteBack.objects.exclude(result="").only("id", "result").iterator():
        WriteBack.objects.filter(pk=row.pk).update(steps=steps_of(row.result))

    rows = WriteBack.objects.order_by("order_id", "connection_id", "id").only(
        "id", "order_id", "connection_id", "event", "state"
    )
    group: list[Any] = []
    for row in rows.iterator():
        if group and (group[0].order_id, group[0].connection_id) != (
            row.order_id,
            row.connection_id,
        ):
            _merge(WriteBack, group)
            group = []
        group.append(row)
    if group:
        _merge(WriteBack, group)
    # The foreign keys' deferred checks of these changes run now: PostgreSQL alters no table
    # with checks pending, and the constraints and columns below are altered in this transaction.
    schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    schema_editor.execute("SET CONSTRAINTS ALL DEFERRED")


def _merge(WriteBack: Any, group: list[Any]) -> None:
    """The pair's rows, oldest first, become its newest: version n of n."""
    newest = group[-1]
    told = [(n, row) for n, row in enumerate(group, start=1) if row.state == "delivered"]
    told_version, told_row = told[-1] if told else (0, None)
    WriteBack.objects.filter(pk=newest.pk).update(
        version=len(group),
        told_event=told_row.event if told_row is not None else "",
        told_version=told_version,
    )
    WriteBack.objects.filter(pk__in=[row.pk for row in group[:-1]]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("shops", "0004_woocommerce_pings_counted"),
    ]

    operations = [
        migrations.AddField(
            model_name="writeback",
            name="version",
            field=models.PositiveIntegerField(default=1),
        ),
        migrations.AddField(
            model_name="writeback",
            name="told_event",
            field=models.CharField(
                blank=True,
                choices=[
                    ("confirmed", "Confirmed"),
                    ("cancelled", "Cancelled"),
                    ("no_answer", "No answer"),
                ],
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="writeback",
            name="told_version",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="writeback",
            name="steps",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.RunPython(one_row_per_order_and_connection, migrations.RunPython.noop),
        migrations.RemoveConstraint(
            model_name="writeback",
            name="write_back_once_per_event",
        ),
        migrations.AddConstraint(
            model_name="writeback",
            constraint=models.UniqueConstraint(
                fields=("order", "connection"), name="write_back_one_per_order_connection"
            ),
        ),
        migrations.RemoveField(
            model_name="writeback",
            name="result",
        ),
        migrations.RenameField(
            model_name="writeback",
            old_name="steps",
            new_name="result",
        ),
    ]
