"""The README's scripted interface, run as it is written: its code block goes to bash line by
line, with the secrets typed on standard input as a person would type them at `read -rs`.

`make run`, the devserver and `make clean` are walked by tests/test_devserver.py; `make test` is
what CI runs. The Docker commands need a Docker engine, which the test machines do not have:
the README says so, and `make test` checks the compose file itself offline.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from calls.models import Call, Campaign, Order, Store, User
from shops.models import ApiToken, ShopConnection
from tests.conftest import TEST_API_KEY
from tests.support.pipeline import child_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
README = BASE_DIR / "README.md"
PASSWORD = "a-Long-password-2027!"
SHOPIFY_TOKEN, SHOPIFY_SECRET = "shpat_readme_0123456789abcdef", "shpss_readme_secret_42"


def readme_block(heading: str) -> str:
    """The first ```sh block under the README's `## heading`."""
    text = README.read_text()
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block, f"no sh block under '## {heading}'"
    return block[1]


def run_as_written(script: str, cwd: Path, stdin: str, **env: str) -> subprocess.CompletedProcess:
    """`script` in bash, stopping at the first failing line, from `cwd`, where `python` is the
    project's interpreter and `manage.py` the project's, as in a checkout with `.venv` active."""
    (cwd / "manage.py").symlink_to(BASE_DIR / "manage.py")
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=cwd,
        input=stdin,
        env={**os.environ, "PATH": path, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.django_db(transaction=True)
def test_the_scripted_interface_runs_as_the_readme_writes_it(simulator, settings, tmp_path):
    # The commands hash with the real hasher, not the tests' fast one.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    (tmp_path / "orders.csv").write_text(
        "phone,amount,order_id,store_name\n"
        "0300 1234567,1500,KK-1001,Karachi Kitchenware\n"
        "03011234568,2450.50,KK-1002,Karachi Kitchenware\n"
        "not-a-phone,100,KK-1003,Karachi Kitchenware\n"
    )
    (tmp_path / "courier.csv").write_text(
        "Order Ref,Consignment No,Status\n"
        "KK-1001,LEO-1,Delivered\n"
        "KK-1002,LEO-2,Returned to shipper\n"
        "KK-9999,LEO-3,Delivered\n"
    )

    result = run_as_written(
        readme_block("The scripted interface"),
        tmp_path,
        stdin=f"{TEST_API_KEY}\n{PASSWORD}\n{SHOPIFY_TOKEN}\n{SHOPIFY_SECRET}\n",
        DATABASE_URL=child_database_url(),
        ROBOCALL_BASE_URL=simulator.base_url,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    store = Store.objects.get(name="Karachi Kitchenware")
    assert store.api_key == TEST_API_KEY and store.default_voice_id == 102
    assert store.retry_delays == [300, 600, 1800]
    assert (store.return_cost, store.notify_on_shipped) == (450, 103)
    assert {u.username: u.role for u in User.objects.filter(username__in=["amina", "bilal"])} == {
        "amina": User.Role.ADMIN,
        "bilal": User.Role.MANAGER,
    }
    assert User.objects.get(username="amina").check_password(PASSWORD)
    campaign = Campaign.objects.get(store=store, name="Eid sale")
    assert sorted(Call.objects.filter(campaign=campaign).values_list("order_id", flat=True)) == [
        "KK-1001",
        "KK-1002",
    ]
    assert "row 4: phone 'not-a-phone' is not a number" in result.stdout
    assert "Campaign 'Eid sale' is running: 2 calls queued." in result.stdout
    parcels = Order.objects.filter(store=store).order_by("order_id")
    assert [(o.order_id, o.delivery, o.tracking) for o in parcels] == [
        ("KK-1001", "delivered", "LEO-1"),
        ("KK-1002", "returned", "LEO-2"),
    ]
    assert "KK-9999" in result.stdout  # listed with its reason, nothing else changed
    with (tmp_path / "calls.csv").open(newline="") as exported:
        rows = list(csv.DictReader(exported))
    assert sorted(row["order_id"] for row in rows) == ["KK-1001", "KK-1002"]
    assert TEST_API_KEY not in result.stdout + result.stderr
    shopify = ShopConnection.objects.get(store=store, kind="shopify")
    assert shopify.secret("access_token") == SHOPIFY_TOKEN
    assert f"/hooks/shopify/{store.pk}/" in result.stdout
    assert SHOPIFY_TOKEN not in result.stdout and SHOPIFY_SECRET not in result.stdout
    assert ShopConnection.objects.filter(store=store, kind="webhook").exists()
    assert ApiToken.objects.filter(store=store, name="website").exists()
