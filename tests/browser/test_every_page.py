"""Every page of every role, in one walk per role: axe-core finds no accessibility violation at
a laptop's width (1366x768), at a phone's (390x844) and in dark mode; on the phone nothing is
wider than the screen and the menu button opens exactly the role's pages.

Each page is opened once and looked at in every way by resizing and re-colouring the same
page, so the walk costs one page load per page (the suite's time budget is tight).

axe-core is vendored for the tests only (tests/vendor/axe-core/, see its README) and injected
as an init script, which the strict CSP does not apply to.

To add a language, add its code to LANGUAGES and teach `choose_language` how a person picks it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, ViewportSize, expect

from tests.browser.conftest import open_page, sign_in_as
from tests.browser.every_page import NAV_PAGES, PAGES, World, make_world, nav_of, pages_of
from tests.calls.test_permissions import EXPECTED_ROLES

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = Path(__file__).resolve().parents[1] / "vendor" / "axe-core" / "axe.min.js"
LAPTOP: ViewportSize = {"width": 1366, "height": 768}
PHONE: ViewportSize = {"width": 390, "height": 844}
LANGUAGES = ["en"]
ROLES = ["admin", "agent", "manager"]
# Dark mode changes colours only, so its pass asks axe about colours only.
COLOUR_RULES = ["color-contrast", "link-in-text-block"]

# The outermost elements past the screen's right edge (outside a box that scrolls), to name.
OVERFLOWING_JS = """(width) => Array.from(document.querySelectorAll("body *"))
  .filter(e => e.getBoundingClientRect().right > width + 1)
  .filter(e => !e.parentElement.closest(".table-wrap, .table-scroll"))
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
    assert set(NAV_PAGES) <= set(PAGES) <= set(EXPECTED_ROLES)


def choose_language(context: BrowserContext, language: str) -> None:
    """Make `language` the interface's language for the pages `context` opens next."""
    assert language == "en", f"no way to choose {language!r} yet"  # English is the default


def wait_until_settled(page: Page) -> None:
    """Wait for what htmx loads on arrival (the overview's balances) to land."""
    page.wait_for_function("() => !document.querySelector('.htmx-request')")


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


def look_at(page: Page, path: str, *, signed_in: bool) -> list[str]:
    """Every problem of the page open at `path`: axe at both widths and in dark mode; on the
    phone, its width. The page is left at the phone's width, light."""
    problems: list[str] = []
    page.set_viewport_size(LAPTOP)
    problems += axe_violations(page, f"{path} at 1366 px")
    page.set_viewport_size(PHONE)
    problems += too_wide(page, path)
    if signed_in:
        # The menu folded away for axe's look at the phone layout, then opened for its own.
        problems += axe_violations(page, f"{path} at 390 px")
        page.get_by_role("button", name="Menu").click()
        problems += too_wide(page, f"{path} with its menu open")
        problems += axe_violations(page, f"{path} at 390 px, menu open")
        page.get_by_role("button", name="Menu").click()
    else:
        problems += axe_violations(page, f"{path} at 390 px")
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
    choose_language(context, language)
    page = context.new_page()
    open_page(page, "/accounts/login/")
    problems = look_at(page, "/accounts/login/", signed_in=False)

    page = sign_in_as(context, world.users[role])
    menu_button = page.get_by_role("button", name="Menu")
    nav = page.get_by_role("navigation", name="Main")
    expected_nav = [live_server.url + path for path in nav_of(role)]
    for path in pages_of(role, world):
        open_page(page, path)
        wait_until_settled(page)
        problems += look_at(page, path, signed_in=True)
        # On the phone the menu is folded away and opens exactly the role's pages.
        expect(nav).to_be_hidden()
        menu_button.click()
        expect(menu_button).to_have_attribute("aria-expanded", "true")
        links = [link.evaluate("a => a.href") for link in nav.get_by_role("link").all()]
        assert links == expected_nav, f"the menu on {path}"
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()
        menu_button.click()
        expect(nav).to_be_hidden()

    assert not problems, f"{len(problems)} problems for {role} ({language}):\n" + "\n".join(
        problems
    )
