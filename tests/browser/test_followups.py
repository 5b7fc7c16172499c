"""An agent works the follow-up queue: calls a customer back, sees the call placed, marks the
follow-up handled, all without leaving the queue."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from calls.models import Call, CallEvent
from tests.browser.conftest import assert_page_assets_loaded, make_campaign, make_final_call
from tests.support.pipeline import Pipeline, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CUSTOMER_PHONE = "923001234588"


def test_an_agent_calls_a_customer_back_from_the_follow_ups_and_marks_it_handled(
    agent_user, store, simulator, provider_url, signed_in
):
    campaign = make_campaign(store)
    asked = make_final_call(
        campaign, "KK-3001", Call.Outcome.CALLBACK_REQUESTED, phone=CUSTOMER_PHONE, minutes_ago=50
    )
    unreachable = make_final_call(
        campaign, "KK-3002", Call.Outcome.UNREACHABLE, phone="923111234599"
    )
    # This time the customer picks up and confirms.
    simulator.set_scripts({CUSTOMER_PHONE: [{"status": 2, "dtmf": 1, "talk_seconds": 25}]})

    page = signed_in(agent_user)
    expect(page.locator("#followup-count")).to_have_text("2")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Follow-ups").click()
    expect(page).to_have_url(re.compile(r"/followups/$"))
    assert_page_assets_loaded(page)
    row = page.locator(f"#followup-{asked.pk}")
    expect(row).to_contain_text("Callback requested (pressed 3)")
    page.evaluate("window.__samePage = true")

    # Calling again spends money: the browser asks first, saying what it costs.
    asked_first: list[str] = []

    def accept(dialog: Any) -> None:
        asked_first.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    row.get_by_role("button", name="Call again").click()

    expect(row).to_contain_text("Called again")
    assert asked_first and asked_first[0].startswith("Call 0300 1234588 again? The call costs")
    child = Call.objects.get(parent=asked)
    expect(row.get_by_role("link", name=f"#{child.pk}", exact=True)).to_be_visible()
    expect(row.locator(".badge.state-queued")).to_be_visible()
    expect(page.locator("#messages")).to_contain_text(
        f"Calling {CUSTOMER_PHONE} again for order KK-3001: call #{child.pk} is queued"
    )
    assert CallEvent.objects.filter(
        call=child, kind=CallEvent.Kind.CREATED, actor=agent_user
    ).exists()

    pipeline = Pipeline(base_url=simulator.base_url).start()
    try:
        wait_for(
            lambda: Call.objects.filter(pk=child.pk, state=Call.State.FINAL).exists(),
            timeout=60,
            what="the call back to be final",
            describe=lambda: "\n" + pipeline.logs()[-2000:],
        )
    finally:
        pipeline.stop()
    placed = [c for c in simulator.calls() if c["text2"] == "KK-3001"]
    assert len(placed) == 1, placed

    # The customer decided on the call back: the order's follow-up closed itself, naming it.
    # The queue refreshes itself: the row goes, and the count in the menu follows.
    asked.refresh_from_db()
    assert asked.handled_note == f"Followed up by call #{child.pk} (confirmed (pressed 1))."
    expect(row).to_have_count(0, timeout=25_000)
    expect(page.locator("#followup-count")).to_have_text("1")
    assert page.evaluate("window.__samePage") is True

    # Marking a follow-up handled happens in its row, and the count follows.
    other = page.locator(f"#followup-{unreachable.pk}")
    other.get_by_label(f"Note for call {unreachable.pk}").fill("Texted the customer.")
    other.get_by_role("button", name="Mark handled").click()
    expect(other).to_contain_text("Handled by you: “Texted the customer.”")
    expect(page.locator("#followup-count")).to_have_text("0")
    unreachable.refresh_from_db()
    assert unreachable.handled_by == agent_user

    # The call back's own page tells what happened.
    page.goto(f"{page.url.split('/followups/')[0]}/calls/{child.pk}/")
    expect(page).to_have_url(re.compile(rf"/calls/{child.pk}/$"))
    expect(page.locator(".status-big")).to_contain_text("Confirmed (pressed 1)")
    expect(page.get_by_role("link", name=f"Call #{asked.pk}")).to_be_visible()
