"""An admin connects the store's Shopify (the stand-in) from Integrations, sends a test order,
the customer confirms on the call, and the tag appears in the shop: the whole loop, in Chromium,
with a real worker and beat, the simulator and the Shopify stand-in over HTTP."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from calls.models import Order
from shops.models import WriteBack
from standins.server import StandIns
from tests.browser.conftest import assert_page_assets_loaded, open_page
from tests.support.pipeline import Pipeline, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
TOKEN = "shpat_browser_0123456789abcdef"
CUSTOMER = "923001234577"


@pytest.fixture
def shopify() -> Iterator[StandIns]:
    with StandIns(any_order_tokens=(TOKEN,)) as stand_ins:
        yield stand_ins


def tags(stand_ins: StandIns) -> list[list[str]]:
    return [order["tags"] for order in stand_ins.records()["shopify"].values()]


def test_an_admin_connects_shopify_sends_a_test_order_and_the_confirmation_is_tagged(
    admin_user, store, simulator, provider_url, signed_in, shopify
):
    simulator.set_scripts({CUSTOMER: [{"status": 2, "dtmf": 1, "talk_seconds": 20}]})
    page = signed_in(admin_user)
    open_page(page, f"/settings/stores/{store.pk}/")
    page.get_by_role("link", name=re.compile("Integrations")).click()
    expect(page.get_by_role("heading", name=f"Integrations of {store.name}")).to_be_visible()
    assert_page_assets_loaded(page)

    card = page.locator("#integration-shopify")
    card.get_by_label("Shop domain").fill("karachi-kitchenware.myshopify.com")
    card.get_by_label("Admin API access token").fill(TOKEN)
    card.get_by_label("Webhook signing secret").fill("shpss_browser_secret")
    card.get_by_label("Admin API endpoint").fill(shopify.shopify_admin_url)
    card.get_by_role("button", name="Connect Shopify").click()
    expect(page.get_by_text("Shopify saved.")).to_be_visible()
    expect(card.get_by_label("Webhook URL to paste in the shop")).to_have_value(
        re.compile(rf"/hooks/shopify/{store.pk}/$")
    )

    card.get_by_label("Send a test order that calls").fill("0300 1234577")
    card.get_by_role("button", name="Send a test order").click()
    expect(page.get_by_text(re.compile(r"Test order: order #TEST-\d+ queued"))).to_be_visible()
    order = Order.objects.get(store=store)

    pipeline = Pipeline(base_url=simulator.base_url).start()
    try:
        wait_for(
            lambda: tags(shopify) == [["robocall-confirmed"]],
            timeout=60,
            what="the confirmation's tag in the shop",
            describe=lambda: f": {shopify.records()}\n{pipeline.logs()[-2000:]}",
        )
    finally:
        pipeline.stop()

    order.refresh_from_db()
    assert (order.status, order.decision, order.decided_by_id) == ("confirmed", "confirmed", None)
    assert WriteBack.objects.get(order=order).state == "delivered"
    [gid] = shopify.records()["shopify"]
    assert gid == f"gid://shopify/Order/{order.shop_ref}"
    page.reload()
    expect(card).to_contain_text(
        re.compile(r"Last decision sent\s*Confirmed, order #\d+: delivered")
    )
