"""The production path end to end: a real Caddy (`tls internal`) in front of a real gunicorn.

Caddy runs the repository's Caddyfile on free loopback ports with its own data and config
directories, and signs a certificate for `localhost` with its internal CA. The client trusts
exactly that CA's root certificate (the file Caddy writes), so the TLS chain is verified as a
browser that was given the root would verify it: no `verify=False`.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from calls.models import User
from tests.calls.test_provider import unused_port
from tests.support import pipeline
from tests.support.pipeline import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent
CADDY = shutil.which("caddy") or "/usr/bin/caddy"
PASSWORD = "a-long-passphrase-for-tls"


@dataclass
class Site:
    url: str
    http_url: str
    root_ca: Path
    gunicorn_log: Path


def started(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def answers(url: str, verify: Path | bool) -> bool:
    try:
        requests.get(url, verify=str(verify) if isinstance(verify, Path) else verify, timeout=2)
    except requests.RequestException:
        return False
    return True


@pytest.fixture
def site(settings) -> Iterator[Site]:
    if not os.access(CADDY, os.X_OK):
        pytest.fail(f"Caddy is not installed at {CADDY} (apt-get install caddy)", pytrace=False)
    tmp = Path(tempfile.mkdtemp(prefix="robodash-https-"))
    web_port, http_port, https_port = unused_port(), unused_port(), unused_port()
    url = f"https://localhost:{https_port}"
    app_env = {
        "PATH": os.environ["PATH"],
        "DATABASE_URL": pipeline.child_database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "SECRET_KEY": "https-test-secret-key-not-for-production",
        "FIELD_ENCRYPTION_KEY": settings.FIELD_ENCRYPTION_KEY,
        "DEBUG": "false",
        "ROBODASH_BEHIND_TLS_PROXY": "true",  # the production default, said out loud
        "ALLOWED_HOSTS": "localhost",
        "CSRF_TRUSTED_ORIGINS": url,
    }
    gunicorn = started(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "robodash.wsgi",
            "--bind",
            f"127.0.0.1:{web_port}",
            "--workers",
            "1",
        ],
        app_env,
        tmp / "gunicorn.log",
    )
    caddy_env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp),
        "XDG_DATA_HOME": str(tmp / "data"),
        "XDG_CONFIG_HOME": str(tmp / "config"),
        "ROBODASH_DOMAIN": "localhost",
        "ROBODASH_TLS": "internal",
        "ROBODASH_HTTP_PORT": str(http_port),
        "ROBODASH_HTTPS_PORT": str(https_port),
        "ROBODASH_UPSTREAM": f"127.0.0.1:{web_port}",
    }
    caddy = started(
        [CADDY, "run", "--config", "Caddyfile", "--adapter", "caddyfile"],
        caddy_env,
        tmp / "caddy.log",
    )
    root_ca = tmp / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"

    def logs() -> str:
        return "".join(
            f"\n--- {name} ---\n{(tmp / name).read_text(errors='replace')[-3000:]}"
            for name in ("gunicorn.log", "caddy.log")
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
            root_ca=root_ca,
            gunicorn_log=tmp / "gunicorn.log",
        )
    finally:
        for process in (caddy, gunicorn):
            process.terminate()
        for process in (caddy, gunicorn):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def amina(settings) -> User:
    # gunicorn checks the password with Django's default hasher, not the tests' fast one.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    return User.objects.create_user("amina", password=PASSWORD, role=User.Role.ADMIN)


def test_signing_in_through_caddy_over_https_gets_hsts_csp_and_secure_cookies(site, amina):
    browser = requests.Session()
    browser.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment overrides verify
    browser.verify = str(site.root_ca)

    form = browser.get(f"{site.url}/accounts/login/", timeout=10)
    assert form.status_code == 200
    assert form.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert "frame-ancestors 'none'" in form.headers["Content-Security-Policy"]
    assert re.search(r"csrftoken=[^;]+;.*\bSecure\b", form.headers["Set-Cookie"])
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
    assert token

    signed_in = browser.post(
        f"{site.url}/accounts/login/",
        data={"username": "amina", "password": PASSWORD, "csrfmiddlewaretoken": token.group(1)},
        headers={"Referer": f"{site.url}/accounts/login/"},
        allow_redirects=False,
        timeout=30,
    )
    assert signed_in.status_code == 302, signed_in.text[:500]
    assert signed_in.headers["Location"] == "/"
    assert re.search(r"sessionid=[^;]+;.*\bSecure\b", signed_in.headers["Set-Cookie"])
    assert all(cookie.secure for cookie in browser.cookies)

    overview = browser.get(f"{site.url}/", timeout=10)
    assert overview.status_code == 200
    assert "<h1>Overview</h1>" in overview.text
    assert "Strict-Transport-Security" in overview.headers
    assert "no-store" in overview.headers["Cache-Control"]
    assert "script-src 'self'" in overview.headers["Content-Security-Policy"]


def test_plain_http_is_redirected_to_https(site):
    response = requests.get(f"{site.http_url}/accounts/login/", allow_redirects=False, timeout=10)
    assert response.status_code in (301, 308)
    assert response.headers["Location"].startswith("https://localhost")


@pytest.mark.parametrize(
    "path, size",
    [("/campaigns/new/upload/", 12 * 1024 * 1024), ("/accounts/login/", 2 * 1024 * 1024)],
)
def test_caddy_refuses_a_body_over_its_paths_cap_before_gunicorn_sees_it(site, path, size):
    """A body sent for real, over its path's cap (11 MiB for the upload, 1 MiB elsewhere):
    Caddy answers 413 from the announced length while the body is still arriving, and never
    passes the request on to gunicorn."""
    context = ssl.create_default_context(cafile=str(site.root_ca))
    port = int(site.url.rsplit(":", 1)[1])
    answer = b""
    with (
        socket.create_connection(("localhost", port), timeout=20) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(
            f"POST {path} HTTP/1.1\r\nHost: localhost:{port}\r\n"
            f"Content-Type: text/plain\r\nContent-Length: {size}\r\n\r\n".encode()
        )
        chunk = b"x" * 65536
        try:
            for _ in range(size // len(chunk)):
                tls.sendall(chunk)
        except OSError:
            pass  # Caddy closed its side once past the cap: the answer is already on its way
        try:
            while b"\r\n\r\n" not in answer:
                data = tls.recv(65536)
                if not data:
                    break
                answer += data
        except OSError:
            pass
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"Server: Caddy" in answer
    assert f"POST {path}" not in site.gunicorn_log.read_text()
