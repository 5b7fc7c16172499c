"""An admin uploads a CSV, reads the preview, launches, and watches the calls finish: a real
Celery worker and beat place them on the simulator while the page updates itself."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from calls.models import Call, Campaign
from tests.browser.conftest import open_page
from tests.support.pipeline import Pipeline

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ORDERS_CSV = (
    "phone,amount,order_id,store_name\r\n"
    "0300 1234501,1500,WEB-2001,Karachi Kitchenware\r\n"
    '+92 301 2345602,"2,450.50",WEB-2002,Karachi Kitchenware\r\n'
    "03121234503,899,WEB-2003,Karachi Kitchenware\r\n"
    "0333-1234504,3200,WEB-2004,Karachi Kitchenware\r\n"
    "021-3456789,1250,WEB-2005,Karachi Kitchenware\r\n"  # a landline: rejected
    "0345 1234506,5600,WEB-2006,Karachi Kitchenware\r\n"
    "0300 1234507,749,WEB-2001,Karachi Kitchenware\r\n"  # the same order again: skipped
)
VALID_ORDERS = ["WEB-2001", "WEB-2002", "WEB-2003", "WEB-2004", "WEB-2006"]


def upload(page, campaign_name: str) -> None:
    open_page(page, "/campaigns/new/")
    form = page.locator("form", has=page.get_by_role("button", name="Preview"))
    form.get_by_label("Campaign name").fill(campaign_name)
    form.get_by_label("CSV or Excel file").set_input_files(
        {"name": "orders.csv", "mimeType": "text/csv", "buffer": ORDERS_CSV.encode()}
    )
    form.get_by_role("button", name="Preview").click()


def test_an_uploaded_campaign_is_previewed_launched_and_watched_to_its_outcomes(
    admin_user, store, simulator, provider_url, signed_in
):
    page = signed_in(admin_user)
    upload(page, "Web orders")

    # The preview: what would be called, what is rejected and why; nothing imported yet.
    expect(page.get_by_role("heading", name="Preview of orders.csv")).to_be_visible()
    preview = page.locator("section", has=page.get_by_role("heading", name="Preview of orders.csv"))
    expect(preview).to_contain_text("7rows read")
    expect(preview).to_contain_text("5valid, will be called")
    expect(preview).to_contain_text("1rejected")
    expect(preview).to_contain_text("1duplicates in this file")
    expect(preview).to_contain_text("0already known, not called again")
    rejected = page.locator("section", has=page.get_by_role("heading", name=re.compile("Rejected")))
    expect(rejected.locator("tbody tr")).to_have_count(1)
    expect(rejected).to_contain_text("021-3456789")
    assert not Call.objects.exists()

    page.get_by_role("button", name="Launch 5 calls").click()

    campaign = Campaign.objects.get(name="Web orders")
    expect(page).to_have_url(re.compile(rf"/campaigns/{campaign.pk}/$"))
    expect(page.locator("#messages")).to_contain_text("Campaign Web orders launched")
    expect(page.locator("#progress")).to_contain_text("0 of 5 calls final")
    assert sorted(campaign.calls.values_list("order_id", flat=True)) == VALID_ORDERS

    # Back after Launch: the launched campaign again, not a red "Nothing to launch".
    page.go_back()
    expect(page).to_have_url(re.compile(rf"/campaigns/{campaign.pk}/$"))
    expect(page.get_by_text("Nothing to launch")).to_have_count(0)
    expect(page.locator("#progress")).to_contain_text("0 of 5 calls final")

    # The campaign's calls, all queued: no worker runs yet.
    page.get_by_role("link", name="its calls").click()
    rows = page.locator("table.calls-table tbody tr")
    expect(rows).to_have_count(len(VALID_ORDERS))
    expect(rows.locator(".badge.state-queued")).to_have_count(len(VALID_ORDERS))
    page.evaluate("window.__samePage = true")

    pipeline = Pipeline(base_url=simulator.base_url).start()
    try:
        # Each row polls itself and stops once its call is final: no reload, no click.
        expect(page.locator("tr.is-live")).to_have_count(0, timeout=90_000)
    finally:
        pipeline.stop()
    assert page.evaluate("window.__samePage") is True

    for call in campaign.calls.all():
        assert call.state == Call.State.FINAL, call
        row = page.locator(f"#call-{call.pk}")
        expect(row.locator(f".badge.outcome-{call.outcome}")).to_have_text(
            call.get_outcome_display()
        )
    calls_by_order = simulator.stats()["calls_by_order"]
    assert all(count == 1 for count in calls_by_order.values()), calls_by_order

    # Back on the campaign page, the progress is whole.
    page.go_back()
    page.reload()
    expect(page.locator("#progress")).to_contain_text("5 of 5 calls final (100%)")


def test_a_launch_the_balance_cannot_pay_for_is_refused_and_imports_nothing(
    admin_user, store, simulator, provider_url, signed_in, page_problems
):
    simulator.add_account(
        api_key=store.api_key, username="teststore", balance="120.00", call_rate="5.50"
    )
    page = signed_in(admin_user)
    upload(page, "Web orders")
    page.get_by_role("button", name="Launch 5 calls").click()

    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Cannot launch")
    expect(alert).to_contain_text("Rs 120")
    expect(alert).to_contain_text("Nothing was imported.")
    assert not Call.objects.exists()
    assert Campaign.objects.get(name="Web orders").status == Campaign.Status.DRAFT


def test_a_large_launch_shows_its_progress_bar_until_a_worker_has_queued_every_order(
    admin_user, store, simulator, provider_url, signed_in, settings
):
    settings.ROBODASH_LAUNCH_IN_REQUEST_ROWS = 100
    simulator.add_account(
        api_key=store.api_key, username="teststore", balance="100000.00", call_rate="5.50"
    )
    rows = "".join(f"0300{i:07d},1500,BIG-{i:04d},Karachi Kitchenware\r\n" for i in range(3000))
    page = signed_in(admin_user)
    open_page(page, "/campaigns/new/")
    form = page.locator("form", has=page.get_by_role("button", name="Preview"))
    form.get_by_label("Campaign name").fill("Big sale")
    form.get_by_label("CSV or Excel file").set_input_files(
        {
            "name": "big.csv",
            "mimeType": "text/csv",
            "buffer": ("phone,amount,order_id,store_name\r\n" + rows).encode(),
        }
    )
    form.get_by_role("button", name="Preview").click()
    expect(page.get_by_role("heading", name="Valid rows (3,000)")).to_be_visible()
    campaign = Campaign.objects.get(name="Big sale")
    # Paused: the queued calls wait, so the page stops polling once the launch is done.
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.PAUSED)

    page.get_by_role("button", name="Launch 3,000 calls").click()

    expect(page).to_have_url(re.compile(rf"/campaigns/{campaign.pk}/$"))
    expect(page.locator("#messages")).to_contain_text("is launching: 3,000 orders")
    bar = page.locator("#progress progress[max='3000']")
    expect(bar).to_have_attribute("value", "0")
    expect(page.locator("#progress")).to_contain_text("0 of 3,000 rows queued (0%)")

    pipeline = Pipeline(base_url=simulator.base_url)
    pipeline.start_worker()
    try:
        # The page polls itself: the bar goes once every order is a queued call, then polling
        # stops (286) as nothing else moves in a paused campaign.
        expect(page.locator("#progress")).to_contain_text("0 of 3,000 calls final", timeout=90_000)
        expect(bar).to_have_count(0)
        expect(page.locator("#progress[hx-get]")).to_have_count(0)
    finally:
        pipeline.stop()
    assert campaign.calls.filter(state=Call.State.QUEUED).count() == 3000

    # Back to the launch page: the campaign, not "Nothing to launch".
    page.go_back()
    expect(page).to_have_url(re.compile(rf"/campaigns/{campaign.pk}/$"))
    expect(page.get_by_text("Nothing to launch")).to_have_count(0)
