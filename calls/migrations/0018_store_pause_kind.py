"""Why robodash paused a store becomes a value (Store.pause_kind), worded when a page is drawn.

The stored sentences are mapped once, by the words robodash itself wrote into them: a rejected
key, or anything else robodash paused a store for (it could not use the provider). The sentence
stays in `paused_reason` as the detail for support.
"""

import re

from django.db import migrations, models

# What the pause sentences robodash wrote said when the key was refused: "the provider rejected
# the API key (...)", or the provider's own "API Key not matched" quoted inside them.
KEY_REJECTED_TEXT = re.compile(r"rejected the api key|api key not matched", re.IGNORECASE)


def kinds_from_sentences(apps, schema_editor):
    Store = apps.get_model("calls", "Store")
    paused = Store.objects.filter(paused=True).exclude(paused_reason="")
    for store in paused.only("pk", "paused_reason"):
        rejected = KEY_REJECTED_TEXT.search(store.paused_reason)
        kind = "key_rejected" if rejected else "provider_unusable"
        Store.objects.filter(pk=store.pk).update(pause_kind=kind)


class Migration(migrations.Migration):
    dependencies = [
        ("calls", "0017_workbooks_read_in_the_worker"),
    ]

    operations = [
        migrations.AddField(
            model_name="store",
            name="pause_kind",
            field=models.CharField(
                blank=True,
                choices=[
                    ("key_rejected", "The provider rejected the API key"),
                    ("provider_unusable", "robodash could not use the provider"),
                ],
                db_default="",
                max_length=32,
            ),
        ),
        migrations.RunPython(kinds_from_sentences, migrations.RunPython.noop),
    ]
