"""No page breaks the Content-Security-Policy: Chromium reports no violation on any of them.

Chromium reports a refused inline script or style both as a console error and as a
`securitypolicyviolation` event. The every-page walk (test_every_page.py) records both on every
page of every role, in both languages; here a deliberate inline style proves the watch sees a
violation when there is one, and the locked sign-in page (not in the walk) is checked.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client
from playwright.sync_api import ConsoleMessage, Page

from calls.models import User
from tests.browser.conftest import PASSWORDS, open_page, wait_until_settled
from tests.browser.every_page import RECORD_VIOLATIONS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def watch_csp(page: Page) -> list[str]:
    """Console lines about the CSP, on every page `page` opens from now on."""
    seen: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            seen.append(f"{page.url}: {message.text}")

    page.on("console", on_console)
    page.add_init_script(RECORD_VIOLATIONS)
    return seen


def open_checked(page: Page, path: str, console: list[str]) -> None:
    response = open_page(page, path)
    assert "frame-ancestors 'none'" in (response.header_value("content-security-policy") or "")
    wait_until_settled(page)  # htmx's fragments land, and are checked too
    assert page.evaluate("window.__cspViolations") == [], path
    assert console == [], path


def test_the_watch_sees_an_inline_style_refused(admin_user, new_context, page_problems):
    page_problems.expect("Content Security Policy")  # provoked on purpose below
    page = new_context().new_page()
    console = watch_csp(page)
    open_page(page, "/accounts/login/")

    page.evaluate("document.body.setAttribute('style', 'color: red')")
    page.wait_for_function("window.__cspViolations.length > 0")
    assert page.evaluate("window.__cspViolations")[0].startswith("style-src")
    assert any("style-src" in line for line in console)


def test_a_locked_sign_in_shows_its_page_without_a_csp_violation(
    admin_user, new_context, page_problems
):
    page_problems.expect(r"status of 429")  # the locked page answers 429, as it should
    guesser = Client()
    for n in range(settings.AXES_FAILURE_LIMIT):
        guesser.post("/accounts/login/", {"username": admin_user.username, "password": f"g{n}"})

    page = new_context().new_page()
    console = watch_csp(page)
    open_checked(page, "/accounts/login/", console)
    page.get_by_label("Username").fill(admin_user.username)
    page.get_by_label("Password").fill(PASSWORDS[User.Role.ADMIN])
    page.get_by_role("button", name="Sign in").click()

    heading = page.get_by_role("heading", name="Sign-in locked", level=1)
    heading.wait_for()
    assert "for 15 minutes after the last attempt" in page.inner_text("main")
    assert page.evaluate("window.__cspViolations") == []
    assert console == []
