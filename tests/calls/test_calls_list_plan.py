"""The calls list filtered by outcome, of one store or all, newest first, on a table large
enough for the planner to choose for real: the page's own query reads its rows straight off an
index in the page's order (no sort, no seq scan, no rows of other outcomes thrown away)."""

from __future__ import annotations

from typing import Any

import pytest

from bench import demo_data
from calls.models import Store
from tests.support.plans import page_query_plan

pytestmark = pytest.mark.django_db(transaction=True)
CALLS = 30_000


def _calls_query_plan(client, url: str) -> list[dict[str, Any]]:
    return page_query_plan(
        client, url, lambda sql: sql.startswith('SELECT "calls_call"."id"') and "LIMIT" in sql
    )


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
    nodes = page_query_plan(client, "/campaigns/", lambda sql: "finalized_at" in sql)
    scans = [n for n in nodes if n.get("Relation Name") == "calls_call"]
    assert {n.get("Index Name") for n in scans} == {"call_campaign_finalized_idx"}, nodes
    assert all(n["Actual Rows"] <= 1 for n in scans), scans
