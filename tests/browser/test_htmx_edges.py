"""What htmx does at the edges: a signed-out session sends the whole page to sign-in, a refusal
is said on the page, keyboard focus stays on the row an action replaced, and a skip link comes
first."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from calls.models import Call, Order, User
from tests.browser.conftest import make_campaign, make_final_call, open_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def follow_up(store) -> Call:
    return make_final_call(make_campaign(store), "KK-5001", Call.Outcome.CALLBACK_REQUESTED)


def open_queue(page: Page, call: Call):
    open_page(page, "/followups/")
    row = page.locator(f"#followup-{call.shop_order_id}")
    expect(row).to_be_visible()
    return row


def test_claiming_after_signing_out_in_another_tab_opens_the_sign_in_page(
    agent_user, follow_up, signed_in
):
    page = signed_in(agent_user)
    row = open_queue(page, follow_up)
    other_tab = page.context.new_page()
    other_tab.goto("/")
    other_tab.get_by_role("button", name="Sign out").click()
    other_tab.wait_for_url(re.compile(r"/accounts/login/"))

    row.get_by_role("button", name="Claim").click()

    page.wait_for_url(re.compile(r"/accounts/login/\?next=/followups/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    expect(page.locator("table")).to_have_count(0)
    assert not Order.objects.get(pk=follow_up.shop_order_id).claimed_by_id


def test_a_refused_row_action_says_so_on_the_page(agent_user, follow_up, signed_in, page_problems):
    page = signed_in(agent_user)
    row = open_queue(page, follow_up)
    # The agent's role changes while the queue is open: claiming is no longer theirs to do.
    User.objects.filter(pk=agent_user.pk).update(role=User.Role.MANAGER)
    page_problems.expect(r"status of 403")

    row.get_by_role("button", name="Claim").click()

    expect(page.locator("#messages [role=alert], #messages .flash-error")).to_contain_text(
        "That was refused"
    )
    expect(row.get_by_role("button", name="Claim")).to_be_visible()  # the row is left as it was
    assert not Order.objects.get(pk=follow_up.shop_order_id).claimed_by_id


def test_keyboard_focus_stays_on_the_row_a_claim_replaced(agent_user, follow_up, signed_in):
    page = signed_in(agent_user)
    row = open_queue(page, follow_up)

    row.get_by_role("button", name="Claim").focus()
    page.keyboard.press("Enter")

    # Focus is put back once htmx has settled the new row: wait for it, don't race it.
    expect(row.get_by_role("button", name="Release")).to_be_focused()
    page.keyboard.press("Enter")  # Release, from the keyboard, lands back on Claim
    expect(row.get_by_role("button", name="Claim")).to_be_focused()
    assert not Order.objects.get(pk=follow_up.shop_order_id).claimed_by_id


def test_the_first_tab_stop_skips_past_the_menu_to_the_content(agent_user, signed_in):
    page = signed_in(agent_user)
    open_page(page, "/followups/")

    page.keyboard.press("Tab")

    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_visible()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    page.keyboard.press("Tab")  # on into the page, not back through the menu
    assert page.evaluate("document.querySelector('main').contains(document.activeElement)")


def test_the_sign_in_page_starts_at_its_username_with_the_skip_link_before_it(new_context):
    page = new_context().new_page()
    page.goto("/accounts/login/")
    expect(page.get_by_label("Username")).to_be_focused()

    page.keyboard.press("Shift+Tab")

    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
