"""The calls list filtered by outcome, of one store or all, newest first, on a table large
enough for the planner to choose for real: the page's own query reads its rows straight off an
index in the page's order (no sort, no seq scan, no rows of other outcomes thrown away)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from bench import demo_data
from calls.models import Store

pytestmark = pytest.mark.django_db(transaction=True)
CALLS = 30_000


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan]
    for child in plan.get("Plans", []):
        found += _nodes(child)
    return found


def _calls_query_plan(client, url: str) -> list[dict[str, Any]]:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    [listing] = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith('SELECT "calls_call"."id"') and "LIMIT" in q["sql"]
    ]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + listing)
        (raw,) = cursor.fetchone()
    plan = raw if isinstance(raw, list) else json.loads(raw)
    return _nodes(plan[0]["Plan"])


def test_the_filtered_calls_list_reads_its_page_straight_off_an_index(client):
    data = demo_data.generate(calls=CALLS, campaigns=6, days=20, verbose=False)  # analyzed
    store = Store.objects.order_by("name").first()
    assert store is not None
    client.force_login(data.users["admin"])

    for url, index in [
        (f"/calls/?outcome=cancelled&store={store.pk}", "call_store_outcome_new_idx"),
        ("/calls/?outcome=cancelled", "call_outcome_new_idx"),
    ]:
        nodes = _calls_query_plan(client, url)

        scans = [n for n in nodes if n.get("Relation Name") == "calls_call"]
        assert [n.get("Index Name") for n in scans] == [index], (url, nodes)
        assert not any(n["Node Type"] in ("Sort", "Incremental Sort") for n in nodes), nodes
        assert scans[0].get("Rows Removed by Filter", 0) == 0, scans
        assert scans[0]["Actual Rows"] <= 51  # one page (and the next page's first row)
