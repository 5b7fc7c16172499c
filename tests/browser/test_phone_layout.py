"""On a phone (390x844): numbers an agent can call with a tap, a follow-up queue worked with one
hand, and a menu that stays open without JavaScript. (test_every_page.py walks every page of
every role for its width and its menu.)"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import TIMEOUT_MS, open_page
from tests.browser.every_page import PHONES, World, make_world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
# A number as stored (923001234567) or as shown (0300 1234567).
PHONE_NUMBER = r"\b(?:92\d{10}|0\d{3} ?\d{7})\b"
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


@pytest.fixture
def world(store, admin_user, agent_user, manager_user) -> World:
    return make_world(store, {"admin": admin_user, "agent": agent_user, "manager": manager_user})


def test_every_page_of_the_role_table_is_walked() -> None:
    assert set(NAV_PAGES) <= set(PAGES)
    assert set(PAGES) <= set(EXPECTED_ROLES)


def assert_fits_the_screen(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} is {width} px wide on a {PHONE['width']} px phone"


def test_an_agent_can_call_every_number_shown_with_a_tap(
    world: World, signed_in, live_server
) -> None:
    page = signed_in(world.users["agent"])
    page.set_viewport_size(PHONE)
    for name in CALLABLE_PAGES:
        open_page(page, world.url(name))
        expect(page.locator('main a[href^="tel:"]').first).to_be_visible()
        uncallable = page.evaluate(UNCALLABLE_NUMBERS_JS, PHONE_NUMBER)
        assert not uncallable, f"numbers without a tel: link on {page.url}: {uncallable}"
    # The queue's number dials the customer, in international form.
    open_page(page, world.url("followup_list"))
    row = page.locator(f"#followup-{world.follow_up.pk}")
    expect(row.locator(f'a[href="tel:+{PHONES["follow_up"]}"]')).to_be_visible()


def test_the_follow_up_queue_works_one_handed_on_a_phone(world: World, signed_in) -> None:
    page = signed_in(world.users["agent"])
    page.set_viewport_size(PHONE)
    open_page(page, world.url("followup_list"))
    row = page.locator(f"#followup-{world.follow_up.pk}")
    too_small = row.evaluate(
        """row => Array.from(row.querySelectorAll('button, input:not([type=hidden]), a[href^="tel:"]'))
            .map(e => [e.textContent.trim() || e.getAttribute('aria-label'), e.getBoundingClientRect()])
            .filter(([, box]) => box.height < 44)
            .map(([name, box]) => `${name}: ${box.height}px`)"""
    )
    assert not too_small, f"tap targets under 44 px: {too_small}"
    # Every control is within the row's card, none off the side of the screen.
    for control in row.locator("button, input:not([type=hidden])").all():
        box = control.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    assert_fits_the_screen(page)
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
        assert_fits_the_screen(page)
    finally:
        context.close()
