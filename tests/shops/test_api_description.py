"""The orders API's OpenAPI description is its behaviour: schemathesis, an OpenAPI fuzzer, reads
/api/v1/openapi.json from a live server and sends what it describes (and what it forbids), with a
real token, checking every answer against it (--checks all): no server error, every status and
header documented, every body in its documented shape, schema-valid input accepted and invalid
input refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from shops.models import ApiToken

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
HOOKS = Path(__file__).with_name("schemathesis_hooks.py")
EXAMPLES_PER_OPERATION = 20  # three operations, about 300 requests in all: 15 s on a quiet machine


def test_schemathesis_finds_the_live_api_doing_what_its_description_says(
    transactional_db, live_server, store, tmp_path
):
    token = ApiToken.issue(store, "fuzzer")[1]

    run = subprocess.run(
        [
            *(str(SCHEMATHESIS), "run", f"{live_server.url}/api/v1/openapi.json"),
            *("--checks", "all", "--header", f"Authorization: Bearer {token}"),
            *("--max-examples", str(EXAMPLES_PER_OPERATION), "--seed", "19"),
            # No example database: each run starts from the seed alone, and leaves nothing.
            *("--generation-database", "none", "--workers", "1", "--no-color"),
            *("--request-timeout", "10"),
        ],
        # In a folder of its own: schemathesis keeps the failures it found in .schemathesis/ in
        # the working directory and replays them first next time.
        cwd=tmp_path,
        env={**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS)},
        capture_output=True,
        text=True,
        timeout=300,
    )

    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-6000:]
    assert "3 selected / 3 total" in report, report[-6000:]
