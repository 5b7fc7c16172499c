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

    # Outcomes of a few percent of the calls (callbacks 4.5%, reviews 0.3%): read through the
    # newest-first index of every outcome, a page of them costs 20 to 300 rows thrown away.
    for url, index in [
        (f"/calls/?outcome=callback_requested&store={store.pk}", "call_store_outcome_new_idx"),
        ("/calls/?outcome=needs_review", "call_outcome_new_idx"),
    ]:
        nodes = _calls_query_plan(client, url)

        scans = [n for n in nodes if n.get("Relation Name") == "calls_call"]
        assert [n.get("Index Name") for n in scans] == [index], (url, nodes)
        assert not any(n["Node Type"] in ("Sort", "Incremental Sort") for n in nodes), nodes
        assert scans[0].get("Rows Removed by Filter", 0) == 0, scans
        assert scans[0]["Actual Rows"] <= 51  # one page (and the next page's first row)

    # The campaign list's "Finished …" time: per finished campaign, one step back along
    # call_campaign_finalized_idx, not every call of the campaign.
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/campaigns/").status_code == 200
    ends_queries = [q["sql"] for q in queries.captured_queries if "finalized_at" in q["sql"]]
    assert len(ends_queries) == 1, [q["sql"][:200] for q in queries.captured_queries]
    [ends] = ends_queries
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + ends)
        (raw,) = cursor.fetchone()
    nodes = _nodes((raw if isinstance(raw, list) else json.loads(raw))[0]["Plan"])
    scans = [n for n in nodes if n.get("Relation Name") == "calls_call"]
    assert {n.get("Index Name") for n in scans} == {"call_campaign_finalized_idx"}, nodes
    assert all(n["Actual Rows"] <= 1 for n in scans), scans
