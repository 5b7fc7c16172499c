"""Browser tests: Debian's Chromium, driven by Playwright, against pytest-django's live server.

Chromium is the one from the `chromium` package (/usr/bin/chromium), never a browser that
Playwright downloads. A machine without it FAILS these tests: they are never skipped, so CI
cannot pass without having run them.

Every page a test opens is watched: a console error or an uncaught exception on any of them
fails the test at teardown, whatever the test itself checked.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from django.utils import timezone, translation
from django.utils.translation import gettext
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Response,
    sync_playwright,
)

from calls.models import Call, CallEvent, Campaign, Store, User
from tests.support.chromium import CHROMIUM, CHROMIUM_ARGS, VIEWPORT
from tests.support.orders import create_call

# Generous for a shared two-core machine; a passing run waits far less.
TIMEOUT_MS = 15_000
PASSWORDS = {
    User.Role.ADMIN: "pw-admin-123",
    User.Role.AGENT: "pw-agent-123",
    User.Role.MANAGER: "pw-manager-123",
}


@dataclass
class PageProblems:
    """Console errors and uncaught exceptions seen on the pages of one test."""

    seen: list[str] = field(default_factory=list)
    # Errors a test provoked on purpose (e.g. opening a page it must be refused), by pattern.
    expected: list[re.Pattern[str]] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                where = message.location.get("url", "")
                self.seen.append(f"console error on {page.url}: {message.text} ({where})")

        page.on("console", on_console)
        page.on("pageerror", lambda error: self.seen.append(f"uncaught on {page.url}: {error}"))

    def expect(self, pattern: str) -> None:
        self.expected.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [
            problem
            for problem in self.seen
            if not any(pattern.search(problem) for pattern in self.expected)
        ]


@pytest.fixture(scope="session")
def chromium(django_db_setup: None) -> Iterator[Browser]:
    """One browser for the whole session, started by the first browser test (a launch costs
    seconds of both cores).

    Playwright's sync API keeps an asyncio loop running in the test's thread for as long as it
    is open, and Django then takes every ORM call made in that thread (the test's own, the
    database flush between tests) for a call from async code and refuses it. These are plain
    synchronous calls between browser steps, and the loop runs only Playwright's coroutines,
    never Django code (the live server answers in threads of its own), so Django is told to
    allow them for as long as the loop lives. That is only ever while browser tests run: they
    run last in the session (tests/conftest.py orders them), after the test database exists, so
    no other test runs beside the loop or without Django's guard.
    """
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}: install Debian's package "
            "(apt-get install chromium). Browser tests are never skipped.",
            pytrace=False,
        )
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page_problems() -> PageProblems:
    return PageProblems()


@pytest.fixture
def new_context(
    chromium: Browser, live_server, page_problems: PageProblems
) -> Iterator[Callable[[], BrowserContext]]:
    """Fresh browser contexts (own cookies: one per person) on the live server, every page of
    which is watched; their console must stay free of errors."""
    contexts: list[BrowserContext] = []

    def make() -> BrowserContext:
        context = chromium.new_context(base_url=live_server.url, viewport=VIEWPORT)
        context.set_default_timeout(TIMEOUT_MS)
        context.on("page", page_problems.watch)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()
    problems = page_problems.unexpected()
    assert not problems, "the browser reported errors:\n" + "\n".join(problems)


def sign_in_as(context: BrowserContext, user: User) -> Page:
    """Sign in through the sign-in form, as a person does; land where the role does (an
    agent on the follow-up queue, anyone else on the overview)."""
    page = context.new_page()
    page.goto("/accounts/login/")
    # In the page's language (a browser asking for Urdu gets an Urdu sign-in form).
    with translation.override(page.locator("html").get_attribute("lang")):
        page.get_by_label(gettext("Username")).fill(user.username)
        page.get_by_label(gettext("Password")).fill(PASSWORDS[User.Role(user.role)])
        page.get_by_role("button", name=gettext("Sign in")).click()
    page.wait_for_url(re.compile(r"/$"))
    return page


@pytest.fixture
def signed_in(new_context: Callable[[], BrowserContext]) -> Callable[[User], Page]:
    """signed_in(user) -> a page of a new browser context, signed in as `user`."""

    def open_as(user: User) -> Page:
        return sign_in_as(new_context(), user)

    return open_as


def open_page(page: Page, path: str, *, status: int = 200) -> Response:
    """Go to `path` and check the page answered `status` with its CSS and htmx loaded."""
    response = page.goto(path)
    assert response is not None, f"no response for {path}"
    assert response.status == status, f"{path} answered {response.status}, not {status}"
    if status == 200:
        assert_page_assets_loaded(page)
    return response


def wait_until_settled(page: Page) -> None:
    """Wait for what htmx requested on arrival to land (or fail, which the page's console then
    says): a condition, where waiting for the network to idle sleeps half a second a page."""
    page.wait_for_function("() => !document.querySelector('.htmx-request')")


def assert_page_assets_loaded(page: Page) -> None:
    page.wait_for_load_state("load")
    # htmx is served from static by {% htmx_script %}; without it nothing on the page updates.
    assert page.evaluate("typeof window.htmx") == "object", f"htmx is not loaded on {page.url}"
    rules = page.evaluate(
        "Array.from(document.styleSheets).filter(s => s.href).map(s => s.cssRules.length)"
    )
    assert rules and all(count > 0 for count in rules), f"a stylesheet is missing on {page.url}"


# --- Data for the pages ------------------------------------------------------------------------


PROVIDER_CALL_IDS = itertools.count(900_001)


def make_campaign(store: Store, name: str = "Eid sale", **fields: object) -> Campaign:
    return Campaign.objects.create(store=store, name=name, **fields)


def make_final_call(
    campaign: Campaign,
    order_id: str,
    outcome: str,
    *,
    phone: str = "923001234567",
    amount: str = "2450.00",
    minutes_ago: int = 30,
) -> Call:
    """A call as the pipeline leaves it once final, with the provider's fields and a timeline."""
    answered: dict[str, int | None] = {
        Call.Outcome.CONFIRMED: 1,
        Call.Outcome.CANCELLED: 2,
        Call.Outcome.CALLBACK_REQUESTED: 3,
        Call.Outcome.NO_INPUT: None,
    }
    created = timezone.now() - dt.timedelta(minutes=minutes_ago)
    is_answered = outcome in answered
    call = create_call(
        store=campaign.store,
        campaign=campaign,
        order_id=order_id,
        phone=phone,
        amount=Decimal(amount),
        voice_id=campaign.store.default_voice_id,
        text1=campaign.store.name,
        text2=order_id,
        state=Call.State.FINAL,
        outcome=outcome,
        provider_call_id=str(next(PROVIDER_CALL_IDS)),
        call_status=2 if is_answered else 5,
        dtmf=answered.get(outcome),
        retry=0 if is_answered else 3,
        call_charges=Decimal("5.50") if is_answered else Decimal("0.00"),
        created_at=created,
        scheduled_for=created,
        claimed_at=created + dt.timedelta(seconds=2),
        sent_at=created + dt.timedelta(seconds=3),
        finalized_at=created + dt.timedelta(minutes=2),
        poll_count=3,
    )
    for offset, kind, data in (
        (0, CallEvent.Kind.CREATED, {"source": "csv"}),
        (2, CallEvent.Kind.CLAIMED, {"attempt": 1}),
        (3, CallEvent.Kind.SENT, {"provider_call_id": call.provider_call_id}),
        (120, CallEvent.Kind.FINAL, {"outcome": outcome, "call_status": call.call_status}),
    ):
        CallEvent.objects.create(
            call=call, at=created + dt.timedelta(seconds=offset), kind=kind, data=data
        )
    return call
