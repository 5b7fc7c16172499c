"""Every existing call gets its order: calls grouped by (store, the shop's order id).

The order keeps the message, campaign and creation time of its first call; its status and
decision follow its latest call, as calls/transitions.py would have set them. No call is
changed but for its new `shop_order` link, so every figure the pages count stays the same.
"""

from typing import Any

from django.db import migrations

# A call's state and outcome -> its order's status (a copy frozen in time of the rule in
# calls/transitions.py: a migration must not import code that will change later).
_STATUS_OF_STATE = {"queued": "waiting", "sending": "calling", "in_progress": "calling"}
_STATUS_OF_OUTCOME = {
    "confirmed": "confirmed",
    "cancelled": "cancelled",
    "callback_requested": "callback_requested",
    "no_input": "no_input",
    "unreachable": "unreachable",
    "failed": "rejected",
    "needs_review": "needs_review",
    "withdrawn": "withdrawn",
}
_DECISIONS = ("confirmed", "cancelled")
_MESSAGE = (
    "order_id phone amount voice_id text1 text2 text3 text4 text5 key1 key2 key3 key4 key5"
).split()


def _status_case(alias: str) -> str:
    whens = [f"WHEN {alias}.state = '{s}' THEN '{v}'" for s, v in _STATUS_OF_STATE.items()]
    whens += [f"WHEN {alias}.outcome = '{o}' THEN '{v}'" for o, v in _STATUS_OF_OUTCOME.items()]
    return f"CASE {' '.join(whens)} ELSE 'needs_review' END"


def _decided_sql(alias: str) -> str:
    return f"{alias}.state = 'final' AND {alias}.outcome IN ('confirmed', 'cancelled')"


def _forward_postgres(schema_editor: Any) -> None:
    decided = _decided_sql("l")
    message = ", ".join(_MESSAGE)
    first_message = ", ".join(f"f.{name}" for name in _MESSAGE)
    sql = f"""
        INSERT INTO calls_order ({message}, store_id, campaign_id, customer_name, source, status,
                                 decision, decided_by_id, decision_note, decided_at, created_at,
                                 updated_at)
        SELECT {first_message}, f.store_id, f.campaign_id, '', COALESCE(src.source, 'csv'),
               {_status_case("l")},
               CASE WHEN {decided} THEN l.outcome ELSE '' END, NULL, '',
               CASE WHEN {decided} THEN COALESCE(l.finalized_at, l.updated_at) END,
               f.created_at, now()
        FROM (SELECT DISTINCT ON (store_id, order_id) *
              FROM calls_call ORDER BY store_id, order_id, created_at, id) f
        JOIN (SELECT DISTINCT ON (store_id, order_id)
                     store_id, order_id, state, outcome, finalized_at, updated_at
              FROM calls_call ORDER BY store_id, order_id, created_at DESC, id DESC) l
          ON l.store_id = f.store_id AND l.order_id = f.order_id
        LEFT JOIN LATERAL (
            SELECT e.data->>'source' AS source FROM calls_callevent e
            WHERE e.call_id = f.id AND e.kind = 'created' AND e.data->>'source' IN ('csv', 'form')
            LIMIT 1
        ) src ON true
    """
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(sql)
        cursor.execute(
            "UPDATE calls_call c SET shop_order_id = o.id FROM calls_order o "
            "WHERE o.store_id = c.store_id AND o.order_id = c.order_id"
        )


def forward(apps: Any, schema_editor: Any) -> None:
    _forward_postgres(schema_editor)  # robodash runs on PostgreSQL only


def backward(apps: Any, schema_editor: Any) -> None:
    apps.get_model("calls", "Call").objects.update(shop_order=None)
    apps.get_model("calls", "Order").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("calls", "0005_orders")]

    operations = [migrations.RunPython(forward, backward, elidable=False)]
