"""The production path end to end: the repository's Caddyfile (`tls internal`) in front of a real
gunicorn started as compose starts it (tests/support/proxied_site.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests

from calls.models import User
from tests.support.proxied_site import Site, proxied_site

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "a-long-passphrase-for-tls"


@pytest.fixture(scope="module")
def site(django_db_setup: None) -> Iterator[Site]:
    """One gunicorn behind Caddy for the module: starting both costs seconds, and the tests
    read only what they did themselves (the sign-in its own cookies, a refusal its own lines
    of gunicorn's log)."""
    with proxied_site() as site:
        yield site


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
    earlier_log = len(site.gunicorn_log.read_text())  # the module's other tests' requests
    answer = b""
    with site.tls_connection(timeout=20) as tls:
        tls.sendall(
            f"POST {path} HTTP/1.1\r\nHost: localhost:{site.port}\r\n"
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
    assert f"POST {path}" not in site.gunicorn_log.read_text()[earlier_log:]
