"""An admin verifies the store's key from beside the key field: the block redraws itself with the
provider's answer, in place, and Enter in the form still saves the store."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import open_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WRONG_KEY = "sk-wrong-0123456789abcdef0123456789ab"


def test_verify_beside_the_key_redraws_its_answer_and_enter_still_saves(
    admin_user, store, provider_url, signed_in
):
    page = signed_in(admin_user)
    open_page(page, f"/settings/stores/{store.pk}/")
    card = page.locator("#verify-card")
    expect(card).to_contain_text("The stored key has not been verified since it was set.")
    page.evaluate("window.__samePage = true")

    page.get_by_label("API key").fill(WRONG_KEY)
    card.get_by_role("button", name="Verify key").click()
    expect(card).to_contain_text("Not matched: the provider rejected the key you typed.")

    page.get_by_label("API key").fill("")
    card.get_by_role("button", name="Verify key").click()
    expect(card).to_contain_text("Matched: the provider accepts this store's key.")
    expect(card).to_contain_text("The stored key was last verified")
    expect(card).not_to_contain_text("has not been verified")
    assert page.evaluate("window.__samePage") is True  # redrawn in place, no reload
    assert WRONG_KEY not in page.content()

    page.get_by_label("Name").press("Enter")  # the store form's own button, not Verify
    expect(page.locator("#messages")).to_contain_text("Store Karachi Kitchenware saved.")


def test_typing_a_rule_previews_it_in_place_and_enter_saves_instead(
    admin_user, store, provider_url, signed_in
):
    page = signed_in(admin_user)
    open_page(page, f"/settings/stores/{store.pk}/")
    preview = page.locator("#rule-preview")
    expect(preview).to_contain_text("Change a rule, or press Preview")
    page.evaluate("window.__samePage = true")

    page.get_by_label("Call orders of at least (Rs)").fill("1000")  # no button pressed
    expect(preview).to_contain_text("Below Rs 1,000.00")
    expect(preview).to_contain_text("Called as today")
    assert page.evaluate("window.__samePage") is True
    store.refresh_from_db()
    assert store.call_min_amount is None  # previewed, not saved

    page.get_by_label("Call orders of at least (Rs)").press("Enter")
    expect(page.locator("#messages")).to_contain_text("Store Karachi Kitchenware saved.")
    store.refresh_from_db()
    assert store.call_min_amount == 1000
