"""Urdu in Chromium: an agent switches from the top bar, and the page turns right-to-left in
Noto Nastaliq Urdu (served from static/), with the top bar mirrored; the choice is saved on the
user and comes back at the next sign-in, in another browser."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from calls.models import Call
from tests.browser.conftest import (
    assert_page_assets_loaded,
    make_campaign,
    make_final_call,
    sign_in_as,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NASTALIQ_FACES_LOADED = """async () => {
  await document.fonts.ready;
  return [...document.fonts]
    .filter(face => face.family.replace(/"/g, "") === "Noto Nastaliq Urdu")
    .filter(face => face.status === "loaded").length;
}"""


def box(page: Page, selector: str) -> dict[str, float]:
    found = page.locator(selector).first.bounding_box()
    assert found is not None, f"{selector} is not on the page"
    return found


def test_an_agent_switches_to_urdu_and_the_page_turns_right_to_left(agent_user, store, new_context):
    make_final_call(make_campaign(store), "KK-5001", Call.Outcome.CONFIRMED, phone="923001234567")
    page = sign_in_as(new_context(), agent_user)
    page.goto("/")  # an agent lands on the follow-up queue; the overview is one click away
    expect(page.locator("html")).to_have_attribute("dir", "ltr")
    expect(page.locator("html")).to_have_attribute("lang", "en")

    page.locator(".topbar").get_by_role("button", name="اردو").click()

    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    expect(page.locator("html")).to_have_attribute("lang", "ur")
    assert_page_assets_loaded(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("خلاصہ")
    agent_user.refresh_from_db()
    assert agent_user.language == "ur"
    # The vendored Nastaliq is what the text is drawn in.
    assert page.evaluate(NASTALIQ_FACES_LOADED) >= 1
    assert page.evaluate("document.fonts.check('16px \"Noto Nastaliq Urdu\"', 'خلاصہ')")
    body_font = page.evaluate("getComputedStyle(document.body).fontFamily")
    assert body_font.startswith('"Noto Nastaliq Urdu"'), body_font
    # Mirrored top bar: the brand at the right edge, the account block at the left.
    width = page.viewport_size["width"] if page.viewport_size else 0
    brand, nav, account = box(page, ".brand"), box(page, ".mainnav"), box(page, ".account")
    assert brand["x"] > nav["x"] > account["x"]
    assert width - (brand["x"] + brand["width"]) < 40
    assert account["x"] < 40

    # A phone number stays one left-to-right run inside the right-to-left table.
    page.goto("/calls/")
    # A phone number stays one left-to-right run inside the right-to-left table: the cell is
    # left to right, and the number itself is isolated (U+2066 ... U+2069), so it reads the
    # same wherever it is copied or shown.
    phone = page.locator("td.mono", has_text="0300 1234567")
    expect(phone).to_be_visible()
    assert phone.evaluate("cell => getComputedStyle(cell).direction") == "ltr"
    assert phone.inner_text().strip() == "\u20660300 1234567\u2069"

    # Another browser (English Accept-Language, no cookie): Urdu again after signing in.
    again = sign_in_as(new_context(), agent_user)
    expect(again.locator("html")).to_have_attribute("dir", "rtl")
    again.locator(".topbar").get_by_role("button", name="English").click()
    expect(again.locator("html")).to_have_attribute("dir", "ltr")
    expect(again.get_by_role("heading", level=1)).to_have_text("Follow-ups")
