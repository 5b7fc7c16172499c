"""Every page opens in a real browser, with its styles and htmx, and without a console error."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from calls.models import Call
from calls.pipeline.balances import refresh_store_balance
from tests.browser.conftest import make_campaign, make_final_call, open_page, wait_until_settled

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def calls(store):
    campaign = make_campaign(store, "Eid sale")
    outcomes = [
        Call.Outcome.CONFIRMED,
        Call.Outcome.CANCELLED,
        Call.Outcome.CALLBACK_REQUESTED,
        Call.Outcome.NO_INPUT,
        Call.Outcome.UNREACHABLE,
    ]
    return [
        make_final_call(
            campaign, f"KK-10{n:02d}", outcome, phone=f"9230012345{n:02d}", minutes_ago=60 - n
        )
        for n, outcome in enumerate(outcomes)
    ]


def test_an_admin_opens_every_page_without_a_browser_error(admin_user, calls, signed_in):
    page = signed_in(admin_user)
    campaign = calls[0].campaign
    callback = calls[2]
    pages = [
        ("/", "Overview"),
        ("/calls/", "Calls"),
        (f"/calls/{callback.pk}/", f"Order {callback.order_id}"),
        ("/campaigns/", "Campaigns"),
        (f"/campaigns/{campaign.pk}/", campaign.name),
        ("/campaigns/new/", "New campaign"),
        ("/followups/", "Follow-ups"),
        ("/reports/", "Reports"),
        ("/settings/", "Settings"),
        (f"/settings/stores/{campaign.store.pk}/", f"Store {campaign.store.name}"),
        ("/settings/users/new/", None),
    ]
    for path, heading in pages:
        open_page(page, path)
        if heading:
            expect(page.get_by_role("heading", level=1)).to_contain_text(heading)
        # Fragments htmx loads on arrival must land too (a failing one errs in the console).
        wait_until_settled(page)


def test_the_overview_shows_the_balance_beat_fetched_from_the_provider(
    admin_user, store, provider_url, signed_in
):
    refresh_store_balance(store.pk)  # beat's minutely task, run here
    page = signed_in(admin_user)
    balances = page.locator("#balances")
    # The simulator's test account holds Rs 5,000 at Rs 5.50 a pulse (tests/conftest.py).
    expect(balances).to_contain_text("Rs 5,000")
    expect(balances).to_contain_text("Rs 5.50 per pulse")
    expect(balances).to_contain_text(store.name)


def test_searching_the_calls_updates_the_table_in_place(admin_user, calls, signed_in):
    page = signed_in(admin_user)
    open_page(page, "/calls/")
    rows = page.locator("table.calls-table tbody tr")
    expect(rows).to_have_count(len(calls))
    page.evaluate("window.__samePage = true")

    page.get_by_label("Phone or order id").fill("0300 1234502")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("KK-1002")
    expect(page).to_have_url(re.compile(r"/calls/\?.*q=0300"))

    page.get_by_label("Outcome").select_option(label="Cancelled (pressed 2)")
    expect(rows).to_have_count(1)
    page.get_by_label("Phone or order id").fill("")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("KK-1001")
    # The table was swapped by htmx: the page itself never reloaded.
    assert page.evaluate("window.__samePage") is True


def test_a_call_page_shows_the_provider_fields_and_the_timeline(admin_user, calls, signed_in):
    page = signed_in(admin_user)
    callback = calls[2]
    open_page(page, "/calls/")
    # The order id opens the order's page; the call's own link opens the call.
    page.get_by_role("link", name=f"call #{callback.pk}", exact=True).click()

    expect(page).to_have_url(re.compile(rf"/calls/{callback.pk}/$"))
    expect(page.locator(".status-big")).to_contain_text("Callback requested (pressed 3)")
    # In words for the merchant; the provider's raw fields open on demand, for support.
    expect(page.get_by_text("Answered, pressed 3 (call back)").first).to_be_visible()
    expect(page.get_by_text("Pressed 3: asked for a callback")).to_be_hidden()
    page.get_by_text("For support: the provider's raw fields").click()
    expect(page.get_by_text("Pressed 3: asked for a callback")).to_be_visible()
    timeline = page.locator("ol.timeline li")
    expect(timeline).to_have_count(4)
    expect(timeline.last).to_contain_text("Final outcome")
