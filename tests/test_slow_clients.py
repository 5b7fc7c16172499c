"""Slow clients cannot stop the site: the repository's Caddyfile reads each request body whole
before gunicorn sees it, and cuts off a body that stops arriving.

The attack (issue 19): TLS connections that each announce a 1,000,000-byte webhook body and send
one byte. Without buffering, Caddy hands each to gunicorn at once, and its three sync workers
(compose's command) sit reading bodies that never come while every page waits.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest
import requests

from shops.models import ShopConnection
from tests.support.pipeline import wait_for
from tests.support.proxied_site import (
    CADDYFILE,
    Site,
    caddy_in_front,
    gunicorn_as_compose_runs_it,
    proxied_site,
)
from tests.support.webserver import free_port

pytestmark = pytest.mark.django_db(transaction=True)

SLOW_CLIENTS = 16
ANNOUNCED = 1_000_000
ANSWERED_DEADLINE = 15  # seconds: a page that answers at all, on a busy machine
PAGE_DEADLINE = 2.0
BUFFERING = "\t\trequest_buffers 11MiB\n"


@pytest.fixture
def shopify_path(store) -> str:
    """A Shopify webhook that exists, so the view reads the body (an unknown store's is refused
    unread)."""
    connection = ShopConnection(store=store, kind="shopify", shop_domain="kk.myshopify.com")
    connection.set_secrets(access_token="shpat_x", webhook_secret="shpss_slow")
    connection.save()
    return f"/hooks/shopify/{store.pk}/"


@contextmanager
def slow_bodies(site: Site, path: str, count: int) -> Iterator[list[ssl.SSLSocket]]:
    """`count` TLS connections, each having sent a webhook POST's headers announcing ANNOUNCED
    bytes and then one byte of the body; all closed on the way out."""
    with ExitStack() as stack:
        connections = []
        for _ in range(count):
            tls = stack.enter_context(site.tls_connection(timeout=10))
            tls.sendall(
                f"POST {path} HTTP/1.1\r\nHost: localhost:{site.port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {ANNOUNCED}\r\n\r\n{{".encode()
            )
            connections.append(tls)
        yield connections


def sign_in_page_seconds(site: Site, deadline: float = PAGE_DEADLINE) -> float | None:
    """How long the sign-in page took over a new connection, or None past `deadline`."""
    started = time.monotonic()
    try:
        page = requests.get(
            f"{site.url}/accounts/login/", verify=str(site.root_ca), timeout=deadline
        )
    except requests.RequestException:
        return None
    seconds = time.monotonic() - started
    assert page.status_code == 200
    return seconds if seconds < deadline else None


def is_unanswered(tls: ssl.SSLSocket) -> bool:
    """Nothing has come back on this connection, and it is still open."""
    tls.settimeout(0.05)
    try:
        tls.recv(1)
    except TimeoutError:
        return True
    return False  # a byte of an answer, or the end of the connection


def answer_to(tls: ssl.SSLSocket, timeout: float) -> bytes:
    """The status line and headers that come back on `tls` (b"" if it closes first)."""
    tls.settimeout(timeout)
    answer = b""
    while b"\r\n\r\n" not in answer:
        data = tls.recv(65536)
        if not data:
            break
        answer += data
    return answer


def test_sixteen_slow_bodies_leave_the_pages_answering_and_would_stop_them_unbuffered(
    shopify_path, tmp_path
):
    caddyfile = CADDYFILE.read_text()
    assert caddyfile.count(BUFFERING) == 1
    https_port = free_port()
    with gunicorn_as_compose_runs_it(tmp_path, f"https://localhost:{https_port}") as (
        upstream,
        log,
    ):
        # The repository's Caddyfile: the bodies wait in Caddy, the pages go on answering.
        with (
            caddy_in_front(
                tmp_path, upstream, https_port=https_port, describe_upstream=log
            ) as site,
            slow_bodies(site, shopify_path, SLOW_CLIENTS) as held,
        ):
            # Answered, however busy the machine running the tests: the workers held by slow
            # bodies (below, unbuffered) never answer at all, so a generous deadline here
            # still tells the two apart.
            for _ in range(3):
                assert sign_in_page_seconds(site, deadline=ANSWERED_DEADLINE) is not None
            assert all(is_unanswered(tls) for tls in held), "every slow body is still pending"
            # The held requests were real ones: sent in full, gunicorn answers each (the
            # signature is missing: 401), so Caddy had kept them open all along.
            rest = b" " * (ANNOUNCED - 1)
            for tls in held:
                tls.sendall(rest)
            for tls in held:
                answer = answer_to(tls, timeout=30)
                assert answer.startswith(b"HTTP/1.1 401"), answer[:200]

        # Without request_buffers, the same slow bodies take every gunicorn worker.
        unbuffered = caddyfile.replace(BUFFERING, "")
        port = free_port()
        with (
            caddy_in_front(
                tmp_path, upstream, https_port=port, caddyfile=unbuffered, describe_upstream=log
            ) as site,
            slow_bodies(site, shopify_path, SLOW_CLIENTS),
        ):
            wait_for(
                lambda: sign_in_page_seconds(site) is None,
                timeout=30,
                what="the sign-in page to stop answering within 2 s",
            )


def test_a_body_that_stops_arriving_is_answered_and_its_connection_closed_at_the_read_timeout(
    shopify_path,
):
    with (
        proxied_site(caddy_env={"ROBODASH_READ_BODY_TIMEOUT": "2s"}) as site,
        slow_bodies(site, shopify_path, 1) as [tls],
    ):
        started = time.monotonic()
        answer = answer_to(tls, timeout=15)
        waited = time.monotonic() - started
        assert answer.startswith(b"HTTP/1.1 499"), answer[:200]
        assert b"Connection: close" in answer
        assert answer_to(tls, timeout=5) == b"", "Caddy closes the connection"
        assert 1.5 < waited < 10
        assert sign_in_page_seconds(site) is not None
