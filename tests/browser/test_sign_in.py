"""Signing in and out as each role, and what each role is shown."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from calls.models import User
from tests.browser.conftest import assert_page_assets_loaded, sign_in_as

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The main navigation each role sees (the server refuses the rest anyway).
NAV = {
    User.Role.ADMIN: [
        *("Overview", "Calls", "Orders", "Campaigns", "Follow-ups", "Reports", "Settings")
    ],
    User.Role.AGENT: ["Overview", "Calls", "Orders", "Campaigns", "Follow-ups"],
    User.Role.MANAGER: ["Overview", "Calls", "Orders", "Campaigns", "Reports"],
}
# Where each role lands: an agent's work is the follow-up queue.
LANDS_ON = {
    User.Role.ADMIN: "Overview",
    User.Role.AGENT: "Follow-ups",
    User.Role.MANAGER: "Overview",
}


@pytest.mark.parametrize("persona", ["admin_user", "agent_user", "manager_user"])
def test_each_role_signs_in_sees_its_own_sections_and_signs_out(persona, request, new_context):
    user: User = request.getfixturevalue(persona)
    page = sign_in_as(new_context(), user)

    expect(
        page.get_by_role("heading", name=LANDS_ON[User.Role(user.role)], level=1)
    ).to_be_visible()
    assert_page_assets_loaded(page)
    nav = page.get_by_role("navigation", name="Main")
    links = [
        re.sub(r"\s*\d+$", "", text.strip()) for text in nav.get_by_role("link").all_inner_texts()
    ]
    assert links == NAV[User.Role(user.role)]
    expect(page.get_by_text(user.get_role_display())).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto("/calls/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/calls/$"))


def test_a_wrong_password_is_refused_with_a_clear_message(agent_user, new_context):
    page = new_context().new_page()
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(agent_user.username)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_text("Your username and password didn't match")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/accounts/login/$"))
