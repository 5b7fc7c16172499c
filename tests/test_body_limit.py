"""An oversized body is refused from its Content-Length, before a byte of it is read.

Checked over a real socket against the live server: the request line and headers claim 200 MB,
no body is sent, and the 413 must arrive anyway (a server that tried to read the body first
would wait for it until the test's deadline).
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.test import Client

pytestmark = pytest.mark.django_db(transaction=True)

CLAIMED = 200 * 1024 * 1024
DEADLINE_SECONDS = 10


def post_headers_only(url: str, path: str, length: int, cookie: str = "") -> str:
    """Send a POST's headers claiming `length` bytes of body, send none, return the status
    line and headers of the answer."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    with socket.create_connection((host, port), timeout=DEADLINE_SECONDS) as sock:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {length}\r\n" + (f"Cookie: {cookie}\r\n" if cookie else "") + "\r\n"
        )
        sock.sendall(head.encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)  # raises TimeoutError past the deadline
            if not chunk:
                break
            answer += chunk
    return answer.decode("latin-1")


def test_a_200_mb_sign_in_post_is_refused_unread_without_a_session(live_server):
    answer = post_headers_only(live_server.url, "/accounts/login/", CLAIMED)
    assert answer.startswith("HTTP/1.1 413"), answer[:200]


def test_a_200_mb_upload_is_refused_unread_for_a_signed_in_admin(live_server, admin_user):
    client = Client()
    client.force_login(admin_user)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    cookie = f"{settings.SESSION_COOKIE_NAME}={session}"

    answer = post_headers_only(live_server.url, "/campaigns/new/upload/", CLAIMED, cookie)
    assert answer.startswith("HTTP/1.1 413"), answer[:200]


def test_the_uploads_may_be_larger_than_any_other_form(client: Client, admin_user, store):
    client.force_login(admin_user)
    between = settings.ROBODASH_MAX_BODY_BYTES + 1
    assert between <= settings.ROBODASH_MAX_UPLOAD_BODY_BYTES
    body = b"x" * between
    other = client.post("/campaigns/new/order/", body, content_type="text/plain")
    upload = client.post("/campaigns/new/upload/", body, content_type="text/plain")
    sheet = client.post(
        f"/settings/stores/{store.pk}/courier-sheet/", body, content_type="text/plain"
    )
    assert other.status_code == 413
    assert upload.status_code != 413  # read, and answered by the view (a form error)
    assert sheet.status_code != 413  # a store's courier sheet


def test_a_body_without_a_length_is_refused(client: Client):
    response = client.post(
        "/accounts/login/", b"", content_type="text/plain", HTTP_TRANSFER_ENCODING="chunked"
    )
    assert response.status_code == 411
