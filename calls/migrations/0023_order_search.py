# The /orders/ page's indexes (calls/views/order_list.py): newest first, of a store or a status,
# and its search by any part of the order id (pg_trgm) or the start of a phone.
#
# Built CONCURRENTLY, so a store taking orders is not blocked while ten million rows are
# indexed; that needs a migration outside a transaction (atomic = False).

import django.contrib.postgres.indexes
import django.db.models.functions.text
from django.contrib.postgres.operations import AddIndexConcurrently, TrigramExtension
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ('calls', '0022_order_batches'),
    ]

    operations = [
        # CREATE EXTENSION IF NOT EXISTS pg_trgm: a trusted extension, so the database's owner
        # may create it without being a superuser.
        TrigramExtension(),
        AddIndexConcurrently(
            model_name='order',
            index=models.Index(fields=['created_at', 'id'], name='order_created_idx'),
        ),
        AddIndexConcurrently(
            model_name='order',
            index=models.Index(fields=['store', 'created_at', 'id'], name='order_store_created_idx'),
        ),
        AddIndexConcurrently(
            model_name='order',
            index=models.Index(fields=['status', 'created_at', 'id'], name='order_status_created_idx'),
        ),
        AddIndexConcurrently(
            model_name='order',
            index=django.contrib.postgres.indexes.GinIndex(django.contrib.postgres.indexes.OpClass(django.db.models.functions.text.Upper('order_id'), name='gin_trgm_ops'), name='order_id_trgm_idx'),
        ),
        AddIndexConcurrently(
            model_name='order',
            index=models.Index(fields=['phone'], name='order_phone_idx', opclasses=['varchar_pattern_ops']),
        ),
        # How common a part of an id is, the planner reads from the histogram of the index's
        # expression: at the default 100 buckets a part in 1% of ids ("100") often hits none and
        # is taken for a rare one, whose every match is then fetched and sorted (14,000 rows at
        # 1M orders, 150,000 at 10M) instead of walking the newest orders until a page is found.
        # 1000 buckets tell a 0.1% part from a rare one (bench/pages_bench.py, /orders/ searched).
        migrations.RunSQL(
            'ALTER INDEX "order_id_trgm_idx" ALTER COLUMN 1 SET STATISTICS 1000',
            reverse_sql='ALTER INDEX "order_id_trgm_idx" ALTER COLUMN 1 SET STATISTICS -1',
        ),
    ]
