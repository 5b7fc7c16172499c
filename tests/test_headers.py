"""Every response carries the security headers; signed-in pages and exports are never cached."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def csp_directives(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    return {
        part.split(" ", 1)[0]: part.split(" ", 1)[1] if " " in part else ""
        for part in (p.strip() for p in header.split(";"))
        if part
    }


def test_the_sign_in_page_sends_a_strict_csp_and_the_other_headers(client: Client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    csp = csp_directives(response)
    assert csp["default-src"] == "'self'"
    assert csp["script-src"] == "'self'"
    assert csp["style-src"] == "'self'"
    assert csp["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"


SIGNED_IN_PAGES = [
    "/",
    "/calls/",
    "/calls/export.csv",
    "/campaigns/",
    "/reports/",
    "/reports/?date_from=2026-01-01&date_to=2026-01-31",
    "/reports/export.csv?date_from=2026-01-01&date_to=2026-01-31",
    "/settings/",
]


@pytest.mark.parametrize("path", SIGNED_IN_PAGES)
def test_signed_in_pages_and_exports_are_not_stored_by_any_cache(client: Client, admin_user, path):
    client.force_login(admin_user)
    response = client.get(path)
    assert response.status_code == 200, path
    assert "no-store" in response["Cache-Control"], path
    assert "Content-Security-Policy" in response


def test_a_static_file_stays_cacheable_for_anyone(client: Client, admin_user):
    client.force_login(admin_user)
    response = client.get("/static/css/robodash.css")
    assert response.status_code == 200
    assert "no-store" not in response.get("Cache-Control", "")
