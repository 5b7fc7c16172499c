"""What the walk of issue 15 found on pages, each checked where a person meets it: in Chromium,
at the width and in the language they use."""

from __future__ import annotations

import io
import re

import pytest
from playwright.sync_api import expect

from calls.intake.uploads import stage_upload
from calls.models import Call, Campaign
from tests.browser.conftest import make_campaign, make_final_call, open_page
from tests.calls.test_stats import add_calls

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


def page_width(page) -> int:  # type: ignore[no-untyped-def]
    return int(page.evaluate("document.documentElement.scrollWidth"))


def test_choosing_a_store_then_a_preset_keeps_the_store(manager_user, store, signed_in):
    page = signed_in(manager_user)
    open_page(page, "/reports/")

    page.get_by_role("combobox", name="Store").select_option(label=store.name)
    page.get_by_role("button", name="Yesterday").click()

    page.wait_for_url(re.compile(r"range=yesterday"))
    expect(page.get_by_role("combobox", name="Store")).to_have_value(str(store.pk))
    expect(page.get_by_role("button", name="Yesterday")).to_have_attribute("aria-current", "true")
    expect(page.locator("#totals-title")).to_contain_text(store.name)


def test_the_upload_previews_formula_warnings_fit_a_phone(admin_user, store, signed_in):
    draft = make_campaign(store, "Formulas", status=Campaign.Status.DRAFT)
    rows = [
        "phone,amount,order_id,store_name",
        '03001234599,1500,=HYPERLINK("https://example.com/a-long-address"),Shop',
        "03001234598,1500,U-2,+Karachi Kitchenware Wholesale",
    ]
    stage_upload(io.BytesIO("\n".join(rows).encode()), campaign=draft, filename="may.csv")
    page = signed_in(admin_user)
    page.set_viewport_size(PHONE)

    open_page(page, f"/campaigns/{draft.pk}/launch/")

    expect(page.get_by_role("heading", name=re.compile("spreadsheet formulas"))).to_be_visible()
    assert page_width(page) <= PHONE["width"]


def test_the_timelines_details_are_drawn_in_the_urdu_pages_font(agent_user, store, signed_in):
    call = make_final_call(make_campaign(store), "KK-5001", Call.Outcome.CONFIRMED)
    agent_user.language = "ur"
    agent_user.save()
    page = signed_in(agent_user)

    open_page(page, f"/calls/{call.pk}/")

    body_font = page.evaluate("getComputedStyle(document.body).fontFamily")
    assert body_font.startswith('"Noto Nastaliq Urdu"'), body_font
    labels = page.locator(".timeline .event > .data .k")
    expect(labels.first).to_be_visible()
    fonts = page.evaluate(
        """() => [...document.querySelectorAll(".timeline .event > .data .k, .timeline time")]
            .map(e => getComputedStyle(e).fontFamily)"""
    )
    assert fonts and set(fonts) == {body_font}, fonts  # no monospace: it has no Urdu letters


CHART_TEXT_BOXES = """() => [...document.querySelectorAll(
    ".trend-chart text.tr-charge-axis, .trend-chart text.tr-end")]
  .map(e => { const r = e.getBoundingClientRect();
              return {text: e.textContent, left: r.left, right: r.right, top: r.top,
                      bottom: r.bottom}; })"""


def test_the_charts_right_axis_and_its_lines_end_labels_do_not_overlap(
    manager_user, store, signed_in
):
    # Large charges (a long axis label), and two rates ending together at the top.
    campaign = make_campaign(store)
    add_calls(campaign, 3, outcome=Call.Outcome.CONFIRMED, charges="45000.00")
    page = signed_in(manager_user)

    open_page(page, "/reports/")

    boxes = page.evaluate(CHART_TEXT_BOXES)
    assert [b["text"] for b in boxes if b["text"].startswith("Rs")] == ["Rs 200,000.00", "Rs 0.00"]
    assert len(boxes) == 5  # the axis' two labels and the three lines' end labels
    chart = page.locator(".trend-chart").bounding_box()
    assert chart is not None
    for n, one in enumerate(boxes):
        assert one["right"] <= chart["x"] + chart["width"] + 0.5, one  # not cut off
        for other in boxes[n + 1 :]:
            apart = (
                one["right"] <= other["left"]
                or other["right"] <= one["left"]
                or one["bottom"] <= other["top"]
                or other["bottom"] <= one["top"]
            )
            assert apart, (one, other)
