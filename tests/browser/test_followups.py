"""An agent works the follow-up queue: signs in to it, calls a customer back, sees the call
placed, marks a follow-up handled, all without leaving the queue; a follow-up is one card that
fits a phone's screen, in English and in Urdu; changing a decision asks first and updates the
row or the order page in place."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, ViewportSize, expect

from calls.models import Call, CallEvent, Order, OrderEvent, User
from tests.browser.conftest import (
    assert_page_assets_loaded,
    make_campaign,
    make_final_call,
    sign_in_as,
)
from tests.browser.test_every_page import (
    AXE,
    RECORD_VIOLATIONS,
    TOO_SMALL_TO_TAP_JS,
    choose_language,
    look_at,
)
from tests.support.pipeline import Pipeline, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CUSTOMER_PHONE = "923001234588"
PHONE_SCREEN: ViewportSize = {"width": 390, "height": 844}
# Whether robodash.js would skip the queue's next refresh (the event its poll starts with).
QUEUE_REFRESH_SKIPPED = """() => {
  const region = document.getElementById("followup-results");
  const poll = new CustomEvent("htmx:beforeRequest", {
    bubbles: true, cancelable: true, detail: {elt: region},
  });
  region.dispatchEvent(poll);
  return poll.defaultPrevented;
}"""


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
    expect(page).to_have_url(re.compile(r"/followups/$"))  # an agent signs in to the queue
    expect(page.locator("#followup-count")).to_have_text("2")
    assert_page_assets_loaded(page)
    row = page.locator(f"#followup-{asked.shop_order_id}")
    expect(row).to_contain_text("Callback requested")
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
        f"Calling 0300 1234588 again for order KK-3001: call #{child.pk} is queued"
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

    # The customer decided on the call back: the order left the queue by itself, naming the
    # call. The queue refreshes itself: the row goes, and the count in the menu follows.
    closed = OrderEvent.objects.get(order=asked.shop_order_id, kind="followup_closed")
    assert closed.data == {"call": child.pk, "why": "confirmed"}
    expect(row).to_have_count(0, timeout=25_000)
    expect(page.locator("#followup-count")).to_have_text("1")
    assert page.evaluate("window.__samePage") is True

    # Marking a follow-up handled happens in its row, with its one note, and the count follows.
    other = page.locator(f"#followup-{unreachable.shop_order_id}")
    other.get_by_label("Note for order KK-3002").fill("Texted the customer.")
    other.get_by_role("button", name="Mark handled").click()
    expect(other).to_contain_text("Out of the queue")
    expect(page.locator("#followup-count")).to_have_text("0")
    handled = OrderEvent.objects.get(order=unreachable.shop_order_id, kind="handled")
    assert (handled.actor, handled.data) == (agent_user, {"note": "Texted the customer."})

    # The call back's own page tells what happened.
    page.goto(f"/calls/{child.pk}/")
    expect(page.locator(".status-big")).to_contain_text("Confirmed (pressed 1)")
    expect(page.get_by_role("link", name=f"Call #{asked.pk}")).to_be_visible()


def card_fits_the_screen(page: Page, card: Locator, actions: list[Locator]) -> None:
    """No sideways scrolling; the card no taller than the screen; scrolled to the card, every
    action is on the screen without scrolling further."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE_SCREEN["width"], f"the page is {width} px wide"
    card.evaluate("card => card.scrollIntoView({block: 'start'})")
    box = card.bounding_box()
    assert box is not None
    assert box["height"] <= PHONE_SCREEN["height"], f"{page.url}: the card is {box['height']} px"
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE_SCREEN["width"] + 0.5
    for action in actions:
        expect(action).to_be_visible()
        where = action.bounding_box()
        assert where is not None
        assert where["y"] >= 0 and where["y"] + where["height"] <= PHONE_SCREEN["height"], (
            f"{action} is off the screen at {where}"
        )
        assert where["x"] >= 0 and where["x"] + where["width"] <= PHONE_SCREEN["width"] + 0.5


@pytest.mark.parametrize("language", ["en", "ur"])
def test_a_follow_up_is_one_card_that_fits_a_phone_screen(agent_user, store, new_context, language):
    User.objects.filter(pk=agent_user.pk).update(language=language)
    campaign = make_campaign(store)
    call = make_final_call(
        campaign, "KK-4001-LONG-ORDER-NUMBER", Call.Outcome.NO_INPUT, phone=CUSTOMER_PHONE
    )
    Order.objects.filter(pk=call.shop_order_id).update(
        customer_name="Muhammad Abdullah Khan Niazi", decision_note="Asked for the evening."
    )
    context = new_context()
    context.set_extra_http_headers({"Accept-Language": language})
    page = sign_in_as(context, agent_user)
    page.set_viewport_size(PHONE_SCREEN)
    expect(page).to_have_url(re.compile(r"/followups/$"))
    expect(page.locator("html")).to_have_attribute("lang", language)

    card = page.locator(f"#followup-{call.shop_order_id}")
    expect(card.get_by_role("link", name="KK-4001-LONG-ORDER-NUMBER")).to_be_visible()
    expect(card).to_contain_text("Muhammad Abdullah Khan Niazi")
    expect(card.locator('a[href="tel:+923001234588"]')).to_be_visible()
    expect(card.locator("details.history")).not_to_have_attribute("open", "")
    expect(card.locator('input[name="note"]')).to_have_count(1)  # one note box
    # Nothing in the card hides a control: every one is there to tap.
    for control in card.locator("button, input:not([type=hidden])").all():
        expect(control).to_be_visible()
    buttons = card.locator(".actions-cell button:visible")
    # Call again, Confirm, Cancel, Mark handled; a callback time and another number are one
    # link away, on the order's page.
    expect(buttons).to_have_count(4)
    later = card.locator(".later-link")
    card_fits_the_screen(page, card, [buttons.nth(n) for n in range(4)] + [later])
    assert card.evaluate(TOO_SMALL_TO_TAP_JS) == []  # every control a thumb's 44 px

    # The order's own page, where "Next order" leads, is the same: the actions on one screen.
    page.goto(f"/orders/{call.shop_order_id}/")
    panel = page.locator(".desk-card")
    expect(page.locator("#history-title")).to_be_visible()
    expect(page.locator("details.fold:has(#history-title)")).not_to_have_attribute("open", "")
    panel_buttons = panel.locator("button:visible")
    expect(panel_buttons).to_have_count(5)  # Claim, Call again, Confirm, Cancel, Mark handled
    card_fits_the_screen(page, panel, [panel_buttons.nth(n) for n in range(5)])


def test_changing_a_decision_from_a_queue_row_asks_first_and_updates_the_row_in_place(
    agent_user, store, signed_in
):
    campaign = make_campaign(store)
    call = make_final_call(campaign, "KK-6001", Call.Outcome.UNREACHABLE)
    order = Order.objects.get(pk=call.shop_order_id)
    page = signed_in(agent_user)
    row = page.locator(f"#followup-{order.pk}")
    expect(row).to_be_visible()
    # Meanwhile the store's rule cancels it, and a new outcome puts it back in the queue.
    Order.objects.filter(pk=order.pk).update(
        decision="cancelled", decided_via="policy", status="cancelled", decided_at=call.created_at
    )

    row.get_by_label("Note for order KK-6001").fill("Customer wants it after all.")
    row.get_by_role("button", name="Confirm: tell the shop to ship").click()

    question = row.locator(".decision-question")
    expect(question).to_contain_text("this overrides the store's rule after the last attempt")
    expect(question.get_by_role("textbox")).to_have_value("Customer wants it after all.")
    expect(page.locator(f"#followup-{order.pk}")).to_have_count(1)  # swapped, not duplicated
    expect(question.get_by_role("textbox")).to_be_focused()
    assert Order.objects.get(pk=order.pk).decided_via == "policy"
    # The queue's refresh waits while the question is open, even with the focus elsewhere.
    page.locator("h1").click()
    assert page.evaluate(QUEUE_REFRESH_SKIPPED) is True

    question.get_by_role("button", name="Yes, confirm: tell the shop to ship").click()

    expect(row).to_contain_text("Decided: confirmed")
    expect(page.locator("#messages")).to_contain_text("Order KK-6001 confirmed by hand")
    expect(row.locator(".decision-question")).to_have_count(0)
    assert page.evaluate(QUEUE_REFRESH_SKIPPED) is False
    order.refresh_from_db()
    assert (order.decision, order.decided_by, order.decision_note) == (
        "confirmed",
        agent_user,
        "Customer wants it after all.",
    )


def test_changing_a_decision_on_the_order_page_asks_and_the_panel_swaps_in_place(
    agent_user, store, signed_in
):
    call = make_final_call(make_campaign(store), "KK-6002", Call.Outcome.CONFIRMED)
    order_pk = call.shop_order_id
    page = signed_in(agent_user)
    page.goto(f"/orders/{order_pk}/")
    assert_page_assets_loaded(page)
    page.evaluate("window.__samePage = true")
    panel = page.locator("#order-panel")

    panel.get_by_role("button", name="Cancel: tell the shop not to ship").click()
    question = panel.locator(".decision-question")
    expect(question).to_contain_text("this overrides the customer's key press (confirmed)")
    expect(page.locator("#order-panel")).to_have_count(1)

    question.get_by_role("button", name="No, keep the decision").click()  # no note needed
    expect(page.locator("#messages")).to_contain_text("the decision stays as it was")
    expect(panel.locator(".decision-question")).to_have_count(0)
    assert Order.objects.get(pk=order_pk).decided_via == "key"

    panel.get_by_role("button", name="Cancel: tell the shop not to ship").click()
    question.get_by_role("textbox").fill("Rang back: pressed 1 by mistake.")
    question.get_by_role("button", name="Yes, cancel: tell the shop not to ship").click()

    expect(page.locator("#messages")).to_contain_text("Order KK-6002 cancelled by hand")
    expect(panel).to_contain_text("bilal, by hand")
    expect(page.locator("#order-panel")).to_have_count(1)
    expect(page.locator(".desk-card")).to_have_count(1)  # no empty or doubled card
    assert page.evaluate("window.__samePage") is True
    assert Order.objects.get(pk=order_pk).decision == "cancelled"


def test_an_agent_corrects_the_phone_and_sets_a_callback_from_the_order_page(
    agent_user, store, signed_in
):
    call = make_final_call(make_campaign(store), "KK-7001", Call.Outcome.UNREACHABLE)
    order_pk = call.shop_order_id
    page = signed_in(agent_user)
    page.set_viewport_size(PHONE_SCREEN)
    page.locator(f"#followup-{order_pk} .later-link").click()
    expect(page).to_have_url(re.compile(rf"/orders/{order_pk}/#callback-at-{order_pk}$"))
    panel = page.locator("#order-panel")
    later = panel.locator("details.later")
    if later.get_attribute("open") is None:
        later.locator("summary").click()

    panel.get_by_label("Correct number").fill("0300 12")
    panel.get_by_role("button", name="Save number").click()
    expect(page.locator("#messages")).to_contain_text(
        "Phone not changed: The number 0300 12 cannot be called: is too short"
    )

    panel.locator("details.later summary").click()
    panel.get_by_label("Correct number").fill("0321 7654321")
    panel.get_by_role("button", name="Save number").click()
    expect(page.locator("#messages")).to_contain_text("now has the number 0321 7654321")
    # The heading's number follows, so a tap dials the corrected one.
    expect(page.locator("h1 #order-phone")).to_have_attribute("href", "tel:+923217654321")
    expect(page.locator("#order-phone")).to_have_count(1)

    panel.locator("details.later summary").click()
    panel.get_by_label(re.compile("Call back at")).fill("2099-01-01T10:00")
    panel.get_by_role("button", name="Set callback").click()  # the browser refuses: past max
    assert not Order.objects.get(pk=order_pk).callback_set
    tomorrow = page.evaluate(
        "() => { const d = new Date(Date.now() + 864e5); return d.toISOString().slice(0, 10); }"
    )
    panel.get_by_label(re.compile("Call back at")).fill(f"{tomorrow}T10:00")
    panel.get_by_role("button", name="Set callback").click()
    expect(page.locator("#messages")).to_contain_text("waits out of the queue until")
    expect(panel).to_contain_text("Call back at")
    order = Order.objects.get(pk=order_pk)
    assert order.callback_set and order.phone == "923217654321"
    kinds = list(OrderEvent.objects.filter(order=order).values_list("kind", flat=True))
    assert "phone_changed" in kinds and "callback_set" in kinds


@pytest.mark.parametrize("language", ["en", "ur"])
def test_the_queue_the_order_card_and_the_decision_question_pass_axe(
    agent_user, admin_user, store, new_context, language
):
    # The walk of every page (test_every_page.py) opens these pages as they load; the question
    # only an action draws, and a card another agent holds, are looked at here.
    campaign = make_campaign(store)
    waiting = make_final_call(campaign, "KK-8001", Call.Outcome.CALLBACK_REQUESTED)
    decided = make_final_call(campaign, "KK-8002", Call.Outcome.CONFIRMED)
    held = make_final_call(campaign, "KK-8003", Call.Outcome.UNREACHABLE)
    Order.objects.filter(pk=held.shop_order_id).update(claimed_by=admin_user)
    context = new_context()
    context.add_init_script(path=AXE)
    context.add_init_script(RECORD_VIOLATIONS)
    choose_language(context, language)
    page = sign_in_as(context, agent_user)
    problems = look_at(page, "/followups/", dark_too=True)
    for call in (waiting, decided, held):
        path = f"/orders/{call.shop_order_id}/"
        page.goto(path)
        problems += look_at(page, path, dark_too=True)

    page.goto(f"/orders/{decided.shop_order_id}/")
    page.locator("#order-panel button[name=decision][value=cancelled]").click()
    expect(page.locator(".decision-question")).to_be_visible()
    problems += look_at(page, "the decision question", dark_too=True)

    assert not problems, "\n".join(problems)
