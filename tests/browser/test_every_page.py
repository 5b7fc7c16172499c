"""Every page of every role, in one walk per role: axe-core finds no accessibility violation at
a laptop's width (1366x768), at a phone's (390x844) and in dark mode (colours only, on the
admin's walk); on the phone nothing is
wider than the screen and the menu button opens exactly the role's pages. Then the phone's own
checks: numbers an agent can call with a tap, a follow-up queue worked with one hand, and a
menu that stays open without JavaScript.

Each page is opened once and looked at in every way by resizing and re-colouring the same
page, so the walk costs one page load per page (the suite's time budget is tight).

axe-core is vendored for the tests only (tests/vendor/axe-core/, see its README) and injected
as an init script, which the strict CSP does not apply to.

Every language of LANGUAGES is walked: English, and Urdu right to left (chosen as a person's
browser asks for it, so the sign-in page is Urdu too). The walk finds its controls by their
names in the walked language (gettext, from the same catalogue the pages use).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.utils import translation
from django.utils.translation import gettext
from playwright.sync_api import BrowserContext, Page, ViewportSize, expect

from tests.browser.conftest import TIMEOUT_MS, open_page, sign_in_as, wait_until_settled
from tests.browser.every_page import (
    NAV_PAGES,
    NOT_PAGES,
    PAGES,
    PHONES,
    RECORD_VIOLATIONS,
    World,
    make_world,
    nav_of,
    pages_of,
)
from tests.calls.test_permissions import EXPECTED_ROLES

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = Path(__file__).resolve().parents[1] / "vendor" / "axe-core" / "axe.min.js"
LAPTOP: ViewportSize = {"width": 1366, "height": 768}
PHONE: ViewportSize = {"width": 390, "height": 844}
LANGUAGES = ["en", "ur"]
ROLES = ["admin", "agent", "manager"]
# Dark mode changes colours only, so its pass asks axe about colours only, and only on the
# admin's walk: the admin sees every page and every kind of element the other roles see.
COLOUR_RULES = ["color-contrast", "link-in-text-block"]
DARK_MODE_ROLES = {"admin"}

BACKGROUND_JS = "getComputedStyle(document.body).backgroundColor"
DARK_BACKGROUND = "rgb(15, 19, 26)"  # --bg in robodash.css's dark mode

# The outermost elements past the screen's right edge (outside a box that scrolls), to name.
# A box counts by its computed overflow, not its class: a rule lost from the stylesheet leaves
# a .table-scroll that no longer scrolls, and its table is then named here.
OVERFLOWING_JS = """(width) => Array.from(document.querySelectorAll("body *"))
  .filter(e => e.getBoundingClientRect().right > width + 1)
  .filter(e => {
    for (let box = e.parentElement; box; box = box.parentElement) {
      if (getComputedStyle(box).overflowX !== "visible") return false;
    }
    return true;
  })
  .filter(e => e.parentElement.getBoundingClientRect().right <= width + 1)
  .slice(0, 8)
  .map(e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "")
    + (typeof e.className === "string" && e.className ? "." + e.className.split(" ").join(".") : "")
    + " " + Math.round(e.getBoundingClientRect().right) + "px")"""

AXE_RUN_JS = """(rules) => axe.run(document, Object.assign(
  {resultTypes: ["violations"]}, rules ? {runOnly: {type: "rule", values: rules}} : {}
)).then(results => results.violations.map(v => ({
  id: v.id, impact: v.impact, help: v.help,
  nodes: v.nodes.map(n => ({target: n.target.join(" "), summary: n.failureSummary})),
})))"""


@pytest.fixture
def world(store, admin_user, agent_user, manager_user) -> World:
    return make_world(store, {"admin": admin_user, "agent": agent_user, "manager": manager_user})


def test_the_walk_covers_every_page_of_the_role_table() -> None:
    # Every URL of the role table is walked unless it is named as not a page (and a name there
    # that left the table is stale); a new URL is walked, and fails the walk if it is no page.
    assert set(EXPECTED_ROLES) >= NOT_PAGES
    assert set(NAV_PAGES) <= set(PAGES)


def choose_language(context: BrowserContext, language: str) -> None:
    """Make `language` the interface's language for the pages `context` opens next: the browser
    asks for it (Accept-Language), as a browser set to Urdu does; the walked users have no saved
    language, so LocaleMiddleware's choice stands. English is the default."""
    if language != "en":
        context.set_extra_http_headers({"Accept-Language": f"{language};q=1, en;q=0.5"})


def axe_violations(page: Page, where: str, rules: list[str] | None = None) -> list[str]:
    violations: list[dict[str, Any]] = page.evaluate(AXE_RUN_JS, rules)
    return [
        f"{where}: {v['id']} ({v['impact']}: {v['help']})\n"
        + "\n".join(f"    {n['target']}: {n['summary']}" for n in v["nodes"][:6])
        + (f"\n    … and {len(v['nodes']) - 6} more" if len(v["nodes"]) > 6 else "")
        for v in violations
    ]


def too_wide(page: Page, where: str) -> list[str]:
    width = page.evaluate("document.documentElement.scrollWidth")
    if width <= PHONE["width"]:
        return []
    culprits = page.evaluate(OVERFLOWING_JS, PHONE["width"])
    return [f"{where}: {width} px wide on a {PHONE['width']} px phone: {culprits}"]


def look_at(page: Page, path: str, *, dark_too: bool) -> list[str]:
    """Every problem of the page open at `path`: a Content-Security-Policy violation (console
    errors fail the test anyway, tests/browser/conftest.py), axe at both widths (and in dark mode
    if `dark_too`); on the phone, its width. The page is left at the phone's width, light."""
    problems: list[str] = [
        f"{path}: CSP violation {v}" for v in page.evaluate("window.__cspViolations")
    ]
    page.set_viewport_size(LAPTOP)
    problems += axe_violations(page, f"{path} at 1366 px")
    page.set_viewport_size(PHONE)
    problems += too_wide(page, path)
    problems += axe_violations(page, f"{path} at 390 px")
    if not dark_too:
        return problems
    page.emulate_media(color_scheme="dark")
    problems += axe_violations(page, f"{path} at 390 px, dark", COLOUR_RULES)
    page.emulate_media(color_scheme="light")
    return problems


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("role", ROLES)
def test_every_page_is_accessible_and_fits_a_phone(
    role: str, language: str, world: World, new_context, live_server
) -> None:
    context = new_context()
    context.add_init_script(path=AXE)
    context.add_init_script(RECORD_VIOLATIONS)
    choose_language(context, language)
    page = context.new_page()
    open_page(page, "/accounts/login/")
    page.emulate_media(color_scheme="dark")
    assert page.evaluate(BACKGROUND_JS) == DARK_BACKGROUND, "the dark mode is not applied"
    page.emulate_media(color_scheme="light")
    problems = look_at(page, "/accounts/login/", dark_too=True)

    page = sign_in_as(context, world.users[role])
    expect(page.locator("html")).to_have_attribute("lang", language)
    with translation.override(language):
        menu_button = page.get_by_role("button", name=gettext("Menu"))
        nav = page.get_by_role("navigation", name=gettext("Main"))
        sign_out = page.get_by_role("button", name=gettext("Sign out"))
    expected_nav = [live_server.url + path for path in nav_of(role)]
    for path in pages_of(role, world):
        response = open_page(page, path)
        assert "frame-ancestors 'none'" in (response.header_value("content-security-policy") or "")
        wait_until_settled(page)
        problems += look_at(page, path, dark_too=role in DARK_MODE_ROLES)
        # On the phone the menu is folded away and opens exactly the role's pages.
        expect(nav).to_be_hidden()
        menu_button.click()
        expect(menu_button).to_have_attribute("aria-expanded", "true")
        links = [link.evaluate("a => a.href") for link in nav.get_by_role("link").all()]
        assert links == expected_nav, f"the menu on {path}"
        expect(sign_out).to_be_visible()
        problems += too_wide(page, f"{path} with its menu open")
        menu_button.click()
        expect(nav).to_be_hidden()

    assert not problems, f"{len(problems)} problems for {role} ({language}):\n" + "\n".join(
        problems
    )


# --- On a phone ------------------------------------------------------------------------------

# A number as stored (923001234567) or as shown (0300 1234567).
PHONE_NUMBER = r"\b(?:92\d{10}|0\d{3} ?\d{7})\b"
# Controls of an element shorter than a thumb's 44 px, with their heights.
TOO_SMALL_TO_TAP_JS = """(element) => Array.from(
    element.querySelectorAll('button, input:not([type=hidden]), a[href^="tel:"]'))
  .map(e => [e.textContent.trim() || e.getAttribute("aria-label"), e.getBoundingClientRect()])
  .filter(([, box]) => box.height < 44)
  .map(([name, box]) => `${name}: ${box.height}px`)"""
# Pages where an agent sees a customer's number and must be able to call it.
CALLABLE_PAGES = ("call_list", "call_detail", "order_detail", "followup_list")

# Text showing a phone number that is not inside a tel: link, anywhere on the page.
UNCALLABLE_NUMBERS_JS = """(pattern) => {
  const re = new RegExp(pattern);
  const walker = document.createTreeWalker(document.querySelector("main"), NodeFilter.SHOW_TEXT);
  const found = [];
  while (walker.nextNode()) {
    const node = walker.currentNode;
    if (re.test(node.textContent) && !node.parentElement.closest('a[href^="tel:"]')) {
      found.push(node.textContent.trim());
    }
  }
  return found;
}"""


def test_an_agent_calls_back_from_a_phone_with_one_hand(world: World, signed_in) -> None:
    page = signed_in(world.users["agent"])
    page.set_viewport_size(PHONE)
    # Every number an agent sees is a tel: link, so a tap calls the customer.
    for name in CALLABLE_PAGES:
        open_page(page, world.url(name))
        expect(page.locator('main a[href^="tel:"]').first).to_be_visible()
        uncallable = page.evaluate(UNCALLABLE_NUMBERS_JS, PHONE_NUMBER)
        assert not uncallable, f"numbers without a tel: link on {page.url}: {uncallable}"
    # The queue (opened last) dials the customer in international form, its controls are big
    # enough for a thumb, and all of them are on the screen.
    row = page.locator(f"#followup-{world.follow_up.shop_order_id}")
    expect(row.locator(f'a[href="tel:+{PHONES["follow_up"]}"]')).to_be_visible()
    too_small = row.evaluate(TOO_SMALL_TO_TAP_JS)
    assert not too_small, f"tap targets under 44 px: {too_small}"
    for control in row.locator("button, input:not([type=hidden])").all():
        box = control.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    assert not too_wide(page, "/followups/")
    row.get_by_role("button", name="Claim").click()
    expect(row.get_by_text("You", exact=True)).to_be_visible()


def test_without_javascript_the_phone_menu_stays_open(world: World, chromium, live_server) -> None:
    context = chromium.new_context(
        base_url=live_server.url, viewport=PHONE, java_script_enabled=False
    )
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        page.goto("/accounts/login/")
        page.get_by_label("Username").fill(world.users["agent"].username)
        page.get_by_label("Password").fill("pw-agent-123")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r"/$"))
        expect(page.get_by_role("button", name="Menu")).to_be_hidden()
        nav = page.get_by_role("navigation", name="Main")
        expect(nav.get_by_role("link", name=re.compile("Follow-ups"))).to_be_visible()
        assert not too_wide(page, "/")
    finally:
        context.close()
