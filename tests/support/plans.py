"""The query plan of the one query a page runs that a test is about, as PostgreSQL executes it
(EXPLAIN ANALYZE): every node of the plan, flattened, for the plan tests to read."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext


def nodes_of(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan]
    for child in plan.get("Plans", []):
        found += nodes_of(child)
    return found


def page_query_plan(client: Any, url: str, picks: Callable[[str], bool]) -> list[dict[str, Any]]:
    """The plan's nodes of the one query of the page at `url` that `picks` (its SQL) names."""
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    chosen = [q["sql"] for q in queries.captured_queries if picks(q["sql"])]
    assert len(chosen) == 1, [q["sql"][:200] for q in queries.captured_queries]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + chosen[0])
        (raw,) = cursor.fetchone()
    plan = raw if isinstance(raw, list) else json.loads(raw)
    return nodes_of(plan[0]["Plan"])
