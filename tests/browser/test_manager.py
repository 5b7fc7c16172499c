"""A manager reads the reports and exports them, and is refused settings and call actions:
on the page (no such buttons, no such menu entries) and on the server (403)."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from calls.models import Call
from tests.browser.conftest import (
    assert_page_assets_loaded,
    make_campaign,
    make_final_call,
    open_page,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def callback_call(store) -> Call:
    campaign = make_campaign(store, "Eid sale")
    make_final_call(campaign, "KK-4001", Call.Outcome.CONFIRMED, phone="923001234501")
    make_final_call(campaign, "KK-4002", Call.Outcome.CONFIRMED, phone="923001234502")
    return make_final_call(
        campaign, "KK-4003", Call.Outcome.CALLBACK_REQUESTED, phone="923001234503"
    )


def test_a_manager_reads_the_reports_and_exports_a_table(manager_user, callback_call, signed_in):
    page = signed_in(manager_user)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Reports").click()
    expect(page).to_have_url(re.compile(r"/reports/$"))
    assert_page_assets_loaded(page)

    for title in ("By day", "By campaign", "By voice id"):
        expect(page.get_by_role("heading", name=title)).to_be_visible()
    by_campaign = page.locator("section", has=page.get_by_role("heading", name="By campaign"))
    campaign_row = by_campaign.locator("tbody tr", has_text="Eid sale")
    expect(campaign_row).to_contain_text(callback_call.store.name)
    # 3 calls, all answered: 2 confirmed of 3 is 66.7 %; one pulse of Rs 5.50 each.
    expect(campaign_row.locator("td").nth(0)).to_have_text("3")  # the label is the row header
    expect(campaign_row).to_contain_text("66.7")
    expect(campaign_row).to_contain_text("16.50")

    with page.expect_download() as download_info:
        by_campaign.get_by_role("link", name="Export CSV").click()
    csv_bytes = download_info.value.path().read_bytes()
    assert csv_bytes.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads Urdu names right
    header, *rows = csv_bytes.decode("utf-8-sig").strip().splitlines()
    assert header.startswith("campaign,detail,calls,")
    assert rows[0].startswith(f"Eid sale,{callback_call.store.name},3,")


def test_a_manager_is_refused_settings_and_call_actions(
    manager_user, callback_call, signed_in, page_problems
):
    # A refused page answers 403 (the permission table says so), which Chromium reports for
    # the document itself: that line, for those two pages, is the only one expected here.
    page_problems.expect(r"status of 403 \(Forbidden\) \(http://[^)]+/(settings|followups)/\)")
    page = signed_in(manager_user)
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Settings")).to_have_count(0)
    expect(nav.get_by_role("link", name="Follow-ups")).to_have_count(0)

    open_page(page, "/settings/", status=403)
    open_page(page, "/followups/", status=403)

    # The call page shows what happened but offers no action.
    open_page(page, f"/calls/{callback_call.pk}/")
    expect(page.locator(".status-big")).to_contain_text("Callback requested (pressed 3)")
    expect(page.get_by_role("region", name="Actions")).to_have_count(0)
    expect(page.get_by_role("button", name="Call again")).to_have_count(0)
    expect(page.get_by_role("button", name="Mark handled")).to_have_count(0)

    # A hand-made request with a valid CSRF token is refused by the server all the same.
    token = json.loads(page.locator("body").get_attribute("hx-headers") or "{}")["x-csrftoken"]
    order = callback_call.shop_order
    for path in (
        f"/calls/{callback_call.pk}/call-again/",
        f"/calls/{callback_call.pk}/withdraw/",
        f"/orders/{order.pk}/handled/",
        f"/orders/{order.pk}/claim/",
        f"/orders/{order.pk}/decide/",
    ):
        response = page.request.post(
            path,
            headers={"X-CSRFToken": token},
            form={"note": "not mine to handle", "decision": "cancelled"},
        )
        assert response.status == 403, (path, response.status)
        assert "CSRF" not in response.text(), "refused for its token, not for the role"
    order.refresh_from_db()
    assert order.followup and order.claimed_by is None and order.decision == ""
    assert not Call.objects.filter(parent=callback_call).exists()
