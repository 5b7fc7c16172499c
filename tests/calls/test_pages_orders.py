"""Orders on the pages: the order page, the follow-up queue as a queue of orders (one row per
order, call again asked and race-safe, decisions by hand and deliberate changes of them, claims
released and taken over, "Next order", callbacks, a corrected phone), the parcel (where it is,
marked delivered or returned by hand, and the decision it makes final), where each role lands
after signing in, and the Calls page's way to an order."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.db import connections, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from calls import actions
from calls.models import Call, CallEvent, Campaign, Order, OrderEvent, Store, User
from calls.transitions import decide_by_hand, finish, record_delivery
from tests.support.orders import create_call

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


@pytest.fixture
def campaign(store: Store) -> Campaign:
    return Campaign.objects.create(store=store, name="Eid sale")


def final_call(campaign: Campaign, order_id: str, outcome: str, **fields: Any) -> Call:
    fields.setdefault("finalized_at", timezone.now())
    return create_call(
        store=campaign.store,
        campaign=campaign,
        order_id=order_id,
        phone="923001234567",
        amount=Decimal("2500.00"),
        voice_id=102,
        text1=campaign.store.name,
        text2=order_id,
        state=Call.State.FINAL,
        outcome=outcome,
        **fields,
    )


def queued_order(campaign: Campaign, order_id: str, outcome: str, **fields: Any) -> Order:
    return Order.objects.get(pk=final_call(campaign, order_id, outcome, **fields).shop_order_id)


def queue_rows(client: Client) -> list[str]:
    response = client.get(reverse("followup_list"))
    assert response.status_code == 200
    return [row["order"].order_id for row in response.context["rows"]]


def flashes(response: Any) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def in_flight_to_final(call: Call, outcome: str) -> None:
    """The pipeline's part: the call is sent, then ends with `outcome`."""
    Call.objects.filter(pk=call.pk).update(state=Call.State.IN_PROGRESS)
    with transaction.atomic():
        finish(Call.objects.select_for_update().get(pk=call.pk), outcome, timezone.now())


# --- the queue: one row per order -----------------------------------------------------------


def test_an_order_called_back_twice_is_one_row_of_the_queue(
    client: Client, agent_user: User, campaign: Campaign
) -> None:
    first = final_call(campaign, "KK-2002", Call.Outcome.CALLBACK_REQUESTED)
    final_call(campaign, "KK-2003", Call.Outcome.UNREACHABLE)
    client.force_login(agent_user)
    again = actions.call_again(first.shop_order, agent_user)
    row = client.get(reverse("followup_list")).context["rows"][0]
    assert (row["order"].order_id, row["busy"]) == ("KK-2002", True)  # in flight: the row stays

    in_flight_to_final(again, Call.Outcome.CALLBACK_REQUESTED)

    response = client.get(reverse("followup_list"))
    # The oldest first: KK-2003's, then KK-2002, back in the queue with the call again's outcome.
    assert [row["order"].order_id for row in response.context["rows"]] == ["KK-2003", "KK-2002"]
    reopened = OrderEvent.objects.filter(order=first.shop_order_id, kind="followup_opened")
    assert reopened.order_by("-id").first().data == {  # type: ignore[union-attr]
        "reason": "callback_requested",
        "call": again.pk,
    }
    page = response.content.decode()
    assert f'href="/calls/{first.pk}/"' in page and f'href="/calls/{again.pk}/"' in page
    assert 'hx-trigger="every 10s' in page  # new follow-ups appear without a reload


def test_a_withdrawn_call_again_leaves_the_order_in_the_queue(
    client: Client, agent_user: User, campaign: Campaign
) -> None:
    order = queued_order(campaign, "KK-2004", Call.Outcome.UNREACHABLE)
    again = actions.call_again(order, agent_user)
    assert actions.withdraw(again, agent_user)
    client.force_login(agent_user)
    assert queue_rows(client) == ["KK-2004"]


def test_call_again_asks_what_it_costs_at_the_stores_rate(
    client: Client, agent_user: User, campaign: Campaign, store: Store
) -> None:
    store.call_rate = Decimal("5.50")
    store.save()
    order = queued_order(campaign, "KK-1", Call.Outcome.CALLBACK_REQUESTED)
    client.force_login(agent_user)

    page = client.get(reverse("followup_list")).content.decode()
    order_page = client.get(reverse("order_detail", args=[order.pk])).content.decode()

    question = (
        "Call 0300 1234567 again? The call costs about Rs 11.00 (Rs 5.50 a pulse x 2 pulses)."
    )
    assert f'hx-confirm="{question}"' in page
    assert f'hx-confirm="{question}"' in order_page


@pytest.mark.django_db(transaction=True)
def test_two_agents_pressing_call_again_on_one_order_at_once_place_one_call(
    store: Store, agent_user: User, admin_user: User
) -> None:
    campaign = Campaign.objects.create(store=store, name="Race")
    order = queued_order(campaign, "KK-9", Call.Outcome.UNREACHABLE)
    start = threading.Barrier(2)
    results: dict[str, Any] = {}

    def press(user: User) -> None:
        try:
            start.wait(5)
            results[user.username] = actions.call_again(order, user)
        except Exception as exc:
            results[user.username] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=press, args=(user,)) for user in (agent_user, admin_user)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)

    placed = [r for r in results.values() if isinstance(r, Call)]
    refused = [r for r in results.values() if isinstance(r, actions.ActionRefused)]
    assert len(placed) == 1 and len(refused) == 1, results
    assert "still queued" in str(refused[0])
    assert order.calls.count() == 2


def test_a_queue_row_has_one_note_box_and_says_what_confirm_and_cancel_tell_the_shop(
    client: Client, agent_user: User, campaign: Campaign
) -> None:
    order = queued_order(campaign, "KK-4", Call.Outcome.UNREACHABLE)
    Order.objects.filter(pk=order.pk).update(customer_name="Ayesha")
    client.force_login(agent_user)

    row = client.get(reverse("followup_list")).content.decode()
    row = row[row.index(f'<tr id="followup-{order.pk}"') :]
    row = row[: row.index("</tr>")]

    assert row.count('name="note"') == 1
    assert "Confirm: tell the shop to ship" in row and "Cancel: tell the shop not to ship" in row
    assert "Mark handled" in row and "Ayesha" in row
    assert 'href="tel:+923001234567"' in row
    assert '<details class="fold history"' in row  # the history folds away


# --- decisions by hand ----------------------------------------------------------------------


def test_an_agent_decides_an_order_by_hand_from_the_queue(
    client: Client, agent_user: User, campaign: Campaign
) -> None:
    call = final_call(campaign, "KK-5", Call.Outcome.CALLBACK_REQUESTED)
    client.force_login(agent_user)

    response = client.post(
        reverse("order_decide", args=[call.shop_order_id]),
        {"decision": "confirmed", "note": "Confirmed on WhatsApp", "replaces": ""},
        headers={**HTMX, "HX-Target": f"followup-{call.shop_order_id}"},
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith(f'<tr id="followup-{call.shop_order_id}"')
    assert "Decided: confirmed" in html
    assert "Order KK-5 confirmed by hand: the shop is told it is confirmed." in html
    order = Order.objects.get(pk=call.shop_order_id)
    assert (order.status, order.decision, order.decided_by, order.decision_note) == (
        "confirmed",
        "confirmed",
        agent_user,
        "Confirmed on WhatsApp",
    )
    assert queue_rows(client) == []
    page = client.get(reverse("order_detail", args=[order.pk])).content.decode()
    assert "bilal, by hand" in page and "Confirmed on WhatsApp" in page
    refused = client.post(reverse("call_again", args=[call.pk]), follow=True)
    assert "decided by hand" in refused.content.decode()
    assert order.calls.count() == 1


def test_a_decision_by_the_customer_shows_as_a_key_press_on_the_order_page(
    client: Client, manager_user: User, campaign: Campaign
) -> None:
    call = final_call(campaign, "KK-6", Call.Outcome.CONFIRMED, call_status=2, dtmf=1)
    CallEvent.objects.create(call=call, kind=CallEvent.Kind.FINAL, data={"outcome": "confirmed"})
    client.force_login(manager_user)

    page = client.get(reverse("order_detail", args=[call.shop_order_id])).content.decode()

    assert "the customer, by key press" in page
    assert f"Call #{call.pk}" in page and "Final outcome" in page
    assert "Confirm: tell the shop to ship" not in page  # a manager reads, does not act


def test_changing_a_decision_asks_first_saying_whose_it_overrides_then_wants_a_note(
    client: Client, agent_user: User, campaign: Campaign
) -> None:
    order = queued_order(campaign, "KK-11", Call.Outcome.CANCELLED)
    client.force_login(agent_user)
    decide = reverse("order_decide", args=[order.pk])
    panel = {**HTMX, "HX-Target": "order-panel"}

    asked = client.post(
        decide, {"decision": "confirmed", "note": "", "replaces": "cancelled"}, headers=panel
    )
    html = asked.content.decode()
    assert html.lstrip().startswith('<div id="order-panel">')
    assert "this overrides the customer&#x27;s key press (cancelled)" in html
    assert "the shop is told to ship it?" in html
    assert "Yes, confirm: tell the shop to ship" in html and "No, keep the decision" in html
    assert Order.objects.get(pk=order.pk).decision == "cancelled"  # asked, not done

    without_note = client.post(
        decide, {"decision": "confirmed", "override": "1", "replaces": "cancelled"}, headers=panel
    )
    assert "say in the note why the decision changes" in without_note.content.decode()
    assert "Yes, confirm: tell the shop to ship" in without_note.content.decode()  # still asked
    assert Order.objects.get(pk=order.pk).decision == "cancelled"

    done = client.post(
        decide,
        {
            "decision": "confirmed",
            "override": "1",
            "replaces": "cancelled",
            "note": "Rang the shop: pressed 2 by mistake.",
        },
        headers=panel,
    )
    assert done.content.decode().lstrip().startswith('<div id="order-panel">')
    order.refresh_from_db()
    assert (order.decision, order.decided_via, order.decided_by) == (
        "confirmed",
        "agent",
        agent_user,
    )
    event = OrderEvent.objects.get(order=order, kind="decided", actor=agent_user)
    assert event.data == {
        "decision": "confirmed",
        "note": "Rang the shop: pressed 2 by mistake.",
        "previous": "cancelled",
        "previous_via": "key",
    }


def test_keeping_the_decision_changes_nothing(
    client: Client, agent_user: User, campaign: Campaign
) -> None:
    order = queued_order(campaign, "KK-12", Call.Outcome.CONFIRMED)
    client.force_login(agent_user)

    response = client.post(
        reverse("order_decide", args=[order.pk]),
        {"decision": "cancelled", "keep": "1", "replaces": "confirmed", "note": "x"},
        headers={**HTMX, "HX-Target": "order-panel"},
    )

    assert "Order KK-12: the decision stays as it was." in response.content.decode()
    assert Order.objects.get(pk=order.pk).decided_via == "key"
    assert not OrderEvent.objects.filter(order=order, kind="decided").exists()


def test_a_decision_made_meanwhile_by_a_colleague_is_asked_about_not_overwritten(
    client: Client, agent_user: User, admin_user: User, campaign: Campaign
) -> None:
    order = queued_order(campaign, "KK-13", Call.Outcome.UNREACHABLE)
    client.force_login(agent_user)
    # The agent's queue shows the order undecided; meanwhile a colleague cancels it.
    decide_by_hand(order, admin_user, "cancelled", "Customer emailed to cancel.")

    response = client.post(
        reverse("order_decide", args=[order.pk]),
        {"decision": "confirmed", "note": "Said yes on the phone", "replaces": ""},
        headers={**HTMX, "HX-Target": f"followup-{order.pk}"},
    )

    html = response.content.decode()
    assert html.lstrip().startswith(f'<tr id="followup-{order.pk}"')
    assert "this overrides amina&#x27;s decision (cancelled)" in html
    assert ">Said yes on the phone</textarea>" in html  # what the agent typed is kept
    assert Order.objects.get(pk=order.pk).decided_by == admin_user


def test_a_decision_changed_while_the_question_was_open_is_not_overwritten(
    client: Client, agent_user: User, admin_user: User, campaign: Campaign
) -> None:
    order = queued_order(campaign, "KK-15", Call.Outcome.CANCELLED)
    client.force_login(agent_user)
    # The question showed the customer's cancel; meanwhile a colleague confirmed it.
    decide_by_hand(order, admin_user, "confirmed", "Customer rang to confirm.")

    response = client.post(
        reverse("order_decide", args=[order.pk]),
        {"decision": "confirmed", "override": "1", "replaces": "cancelled", "note": "Yes"},
        headers={**HTMX, "HX-Target": "order-panel"},
    )

    html = response.content.decode()
    assert "Order KK-15 was decided meanwhile (confirmed): look again before changing it." in html
    assert "amina, by hand" in html and "decision-question" not in html  # the panel as it is
    assert Order.objects.get(pk=order.pk).decided_by == admin_user


def test_a_change_of_decision_without_javascript_is_asked_on_the_order_page(
    client: Client, agent_user: User, campaign: Campaign
) -> None:
    order = queued_order(campaign, "KK-14", Call.Outcome.CONFIRMED)
    client.force_login(agent_user)

    response = client.post(
        reverse("order_decide", args=[order.pk]),
        {"decision": "cancelled", "note": "", "replaces": "confirmed", "next": "/followups/"},
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert "<h1>Order KK-14" in html
    assert "Cancel it, and the shop is told not to ship it?" in html
    assert Order.objects.get(pk=order.pk).decision == "confirmed"


# --- claims ----------------------------------------------------------------------------------


def test_an_agent_cannot_mark_handled_what_another_holds_unless_taking_it_over(
    client: Client, agent_user: User, admin_user: User, campaign: Campaign
) -> None:
    order = queued_order(campaign, "KK-7", Call.Outcome.UNREACHABLE)
    assert actions.claim(order, admin_user)
    client.force_login(agent_user)

    refused = client.post(
        reverse("followup_handled", args=[order.pk]), {"note": "done"}, follow=True
    )

    assert "amina holds this follow-up; take it over first" in refused.content.decode()
    assert Order.objects.get(pk=order.pk).followup == "unreachable"

    client.post(reverse("followup_take_over", args=[order.pk]))
    client.post(reverse("followup_handled", args=[order.pk]), {"note": "done"})

    order.refresh_from_db()
    assert (order.followup, order.claimed_by) == ("", None)
    taken = OrderEvent.objects.get(order=order, kind=OrderEvent.Kind.TAKEN_OVER)
    assert (taken.actor, taken.data) == (agent_user, {"previous": "amina"})
    assert OrderEvent.objects.get(order=order, kind=OrderEvent.Kind.HANDLED).actor == agent_user


def test_a_claim_can_be_released(client: Client, agent_user: User, campaign: Campaign) -> None:
    order = queued_order(campaign, "KK-8", Call.Outcome.NEEDS_REVIEW)
    actions.claim(order, agent_user)
    client.force_login(agent_user)

    client.post(reverse("followup_release", args=[order.pk]))

    order.refresh_from_db()
    assert order.claimed_by is None
    assert OrderEvent.objects.filter(order=order, kind="released", actor=agent_user).exists()


def test_next_order_claims_the_oldest_unclaimed_follow_up_and_opens_it(
    client: Client, agent_user: User, admin_user: User, campaign: Campaign
) -> None:
    now = timezone.now()
    held = queued_order(
        campaign, "KK-OLDEST", Call.Outcome.UNREACHABLE, finalized_at=now - dt.timedelta(hours=3)
    )
    actions.claim(held, admin_user)
    older = queued_order(
        campaign, "KK-OLDER", Call.Outcome.UNREACHABLE, finalized_at=now - dt.timedelta(hours=2)
    )
    queued_order(campaign, "KK-NEW", Call.Outcome.UNREACHABLE, finalized_at=now)
    client.force_login(agent_user)

    response = client.post(reverse("followup_next"))

    assert response["Location"] == reverse("order_detail", args=[older.pk])
    assert Order.objects.get(pk=older.pk).claimed_by == agent_user
    assert flashes(response) == ["Order KK-OLDER is yours to follow up."]


@pytest.mark.django_db(transaction=True)
def test_two_agents_pressing_next_order_at_once_get_two_different_orders(
    store: Store, agent_user: User, admin_user: User
) -> None:
    campaign = Campaign.objects.create(store=store, name="Race")
    for n in range(3):
        queued_order(campaign, f"KK-N{n}", Call.Outcome.UNREACHABLE)
    # Each agent's "Next order" in its own thread, so its own database connection, both
    # holding their transaction open until the other has chosen too: the first one's row lock
    # is held while the second chooses, which SKIP LOCKED passes over.
    chose = threading.Barrier(2)
    start = threading.Barrier(2)
    results: dict[str, Any] = {}

    def press(user: User) -> None:
        try:
            start.wait(5)
            with transaction.atomic():
                order = actions.next_order(user)
                results[user.username] = order
                chose.wait(10)  # commits only once both have their order
        except Exception as exc:
            results[user.username] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=press, args=(user,)) for user in (agent_user, admin_user)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)

    orders = [results.get(name) for name in ("bilal", "amina")]
    assert all(isinstance(order, Order) for order in orders), results
    assert orders[0].pk != orders[1].pk  # type: ignore[union-attr]
    claimed = dict(Order.objects.exclude(claimed_by=None).values_list("order_id", "claimed_by"))
    assert claimed == {orders[0].order_id: agent_user.pk, orders[1].order_id: admin_user.pk}  # type: ignore[union-attr]


# --- a callback time ------------------------------------------------------------------------


def local_minute(moment: dt.datetime, store: Store) -> str:
    return f"{moment.astimezone(store.zone):%Y-%m-%dT%H:%M}"


def test_a_callback_time_hides_the_order_until_it_comes_then_it_leads_the_queue(
    client: Client, agent_user: User, campaign: Campaign, store: Store
) -> None:
    now = timezone.now()
    order = queued_order(campaign, "KK-CB", Call.Outcome.CALLBACK_REQUESTED)
    queued_order(
        campaign, "KK-OLD", Call.Outcome.UNREACHABLE, finalized_at=now - dt.timedelta(days=2)
    )
    client.force_login(agent_user)
    actions.claim(order, agent_user)
    at = (now + dt.timedelta(hours=2)).replace(second=0, microsecond=0)

    response = client.post(
        reverse("followup_callback", args=[order.pk]),
        {"callback_at": local_minute(at, store)},
        headers={**HTMX, "HX-Target": f"followup-{order.pk}"},
    )

    assert "Order KK-CB waits out of the queue until" in response.content.decode()
    order.refresh_from_db()
    assert (order.followup_at, order.callback_set, order.claimed_by) == (at, True, None)
    event = OrderEvent.objects.get(order=order, kind=OrderEvent.Kind.CALLBACK_SET)
    assert (event.actor, event.data) == (agent_user, {"callback_at": at.isoformat()})
    assert queue_rows(client) == ["KK-OLD"]  # waiting out of the queue
    assert 'aria-label="1 open"' in client.get(reverse("followup_list")).content.decode()

    Order.objects.filter(pk=order.pk).update(followup_at=now - dt.timedelta(minutes=1))  # it comes

    assert queue_rows(client) == ["KK-CB", "KK-OLD"]  # a due callback first, however new


@pytest.mark.parametrize(
    ("when", "said"),
    [
        (dt.timedelta(minutes=-5), "has passed; choose a time to call back that is still to come."),
        (dt.timedelta(days=15), "Choose a callback time within 14 days (by "),
    ],
)
def test_a_callback_time_past_or_too_far_ahead_is_refused_saying_why(
    client: Client,
    agent_user: User,
    campaign: Campaign,
    store: Store,
    when: dt.timedelta,
    said: str,
) -> None:
    order = queued_order(campaign, "KK-CB", Call.Outcome.CALLBACK_REQUESTED)
    client.force_login(agent_user)

    response = client.post(
        reverse("followup_callback", args=[order.pk]),
        {"callback_at": local_minute(timezone.now() + when, store)},
    )

    [message] = flashes(response)
    assert message.startswith("No callback set: ") and said in message
    assert Order.objects.get(pk=order.pk).callback_set is False


def test_a_callback_time_that_is_no_time_is_refused_with_an_example(
    client: Client, agent_user: User, campaign: Campaign
) -> None:
    order = queued_order(campaign, "KK-CB", Call.Outcome.CALLBACK_REQUESTED)
    client.force_login(agent_user)

    response = client.post(
        reverse("followup_callback", args=[order.pk]), {"callback_at": "tomorrow-ish"}
    )

    assert response.status_code == 302
    [message] = flashes(response)
    assert message.startswith("No callback set: give a day and a time, e.g. ")


def test_a_callback_time_is_read_in_the_stores_zone(
    client: Client, agent_user: User, campaign: Campaign, store: Store
) -> None:
    store.timezone = "Asia/Karachi"  # UTC+5
    store.save()
    order = queued_order(campaign, "KK-CB", Call.Outcome.CALLBACK_REQUESTED)
    client.force_login(agent_user)
    karachi = (timezone.now() + dt.timedelta(days=1)).astimezone(store.zone)
    typed = karachi.replace(hour=17, minute=30, second=0, microsecond=0)

    client.post(
        reverse("followup_callback", args=[order.pk]), {"callback_at": f"{typed:%Y-%m-%dT17:30}"}
    )

    at = Order.objects.get(pk=order.pk).followup_at
    assert at is not None and at.astimezone(dt.UTC).hour == 12 and at.minute == 30


def test_a_callback_for_an_order_out_of_the_queue_is_refused(
    client: Client, agent_user: User, campaign: Campaign, store: Store
) -> None:
    order = queued_order(campaign, "KK-DONE", Call.Outcome.CONFIRMED)
    client.force_login(agent_user)

    response = client.post(
        reverse("followup_callback", args=[order.pk]),
        {"callback_at": local_minute(timezone.now() + dt.timedelta(hours=1), store)},
    )

    assert flashes(response) == [
        "No callback set: Order KK-DONE is not in the follow-up queue; there is nothing to call "
        "back."
    ]


# --- a corrected phone ----------------------------------------------------------------------


def test_a_corrected_phone_is_what_the_next_call_dials_and_the_old_one_stays_in_the_timeline(
    client: Client, agent_user: User, campaign: Campaign
) -> None:
    order = queued_order(campaign, "KK-PH", Call.Outcome.UNREACHABLE)
    client.force_login(agent_user)

    response = client.post(
        reverse("order_phone", args=[order.pk]),
        {"phone": "0321-7654321"},
        headers={**HTMX, "HX-Target": "order-panel"},
    )

    assert (
        "Order KK-PH now has the number 0321 7654321 (was 0300 1234567); the next call dials it."
        in response.content.decode()
    )
    order.refresh_from_db()
    assert order.phone == "923217654321"
    event = OrderEvent.objects.get(order=order, kind=OrderEvent.Kind.PHONE_CHANGED)
    assert (event.actor, event.data) == (
        agent_user,
        {"old_phone": "923001234567", "phone": "923217654321"},
    )
    again = actions.call_again(order, agent_user)
    assert again.phone == "923217654321"
    page = client.get(reverse("order_detail", args=[order.pk])).content.decode()
    assert "Phone number changed" in page and "0300 1234567" in page  # the old number, kept


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("021 35678901", "is a landline, not a mobile number"),
        ("0300 12", "is too short for a mobile number"),
        ("call me", "is not a number"),
    ],
)
def test_a_phone_that_cannot_be_called_is_refused_saying_why(
    client: Client, agent_user: User, campaign: Campaign, typed: str, said: str
) -> None:
    order = queued_order(campaign, "KK-PH", Call.Outcome.UNREACHABLE)
    client.force_login(agent_user)

    response = client.post(reverse("order_phone", args=[order.pk]), {"phone": typed})

    [message] = flashes(response)
    assert message.startswith(f"Phone not changed: The number {typed} cannot be called: ")
    assert said in message
    assert Order.objects.get(pk=order.pk).phone == "923001234567"


def test_the_phone_is_not_changed_under_a_call_that_dials_the_old_one(
    client: Client, agent_user: User, campaign: Campaign
) -> None:
    order = queued_order(campaign, "KK-PH", Call.Outcome.UNREACHABLE)
    queued = actions.call_again(order, agent_user)
    client.force_login(agent_user)

    response = client.post(reverse("order_phone", args=[order.pk]), {"phone": "03217654321"})

    assert flashes(response) == [
        f"Phone not changed: Call #{queued.pk} for this order is still queued and dials the old "
        "number; wait for its outcome before changing it."
    ]
    assert Order.objects.get(pk=order.pk).phone == "923001234567"


# --- where each role lands ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "lands_on"),
    [("agent", "/followups/"), ("admin", "/"), ("manager", "/")],
)
def test_an_agent_signs_in_to_the_follow_up_queue_and_the_others_to_the_overview(
    role: str, lands_on: str
) -> None:
    User.objects.create_user("person", password="pw-person-123", role=role)
    credentials = {"username": "person", "password": "pw-person-123"}

    plain = Client().post(reverse("login"), credentials)
    from_the_site_address = Client().post(f"{reverse('login')}?next=/", credentials)
    to_a_page = Client().post(f"{reverse('login')}?next=/calls/", credentials)

    assert plain["Location"] == lands_on
    assert from_the_site_address["Location"] == lands_on
    assert to_a_page["Location"] == "/calls/"  # a page asked for is the page given


# --- the Calls page -------------------------------------------------------------------------


def test_the_calls_page_links_each_call_to_its_order_and_finds_an_order_by_its_id(
    client: Client, manager_user: User, campaign: Campaign
) -> None:
    call = final_call(campaign, "KK-10077", Call.Outcome.CANCELLED)
    final_call(campaign, "KK-20011", Call.Outcome.CONFIRMED)
    client.force_login(manager_user)
    order_url = reverse("order_detail", args=[call.shop_order_id])

    listed = client.get(reverse("call_list")).content.decode()
    found = client.get(reverse("call_list"), {"q": "KK-10077"})

    assert f'href="{order_url}"' in listed
    assert [o.order_id for o in found.context["matching_orders"]] == ["KK-10077"]
    assert "the order and all its calls" in found.content.decode()


# --- the parcel ------------------------------------------------------------------------------


def test_the_order_page_says_where_the_parcel_is_and_where_that_was_learnt(
    client: Client, manager_user: User, campaign: Campaign
) -> None:
    order = queued_order(campaign, "KK-30", Call.Outcome.CONFIRMED)
    shipped_at = dt.datetime(2026, 11, 29, 8, 33, tzinfo=dt.UTC)  # 13:33 in Karachi
    record_delivery(
        order, "shipped", via=Order.DeliveryVia.SHOPIFY, at=shipped_at, tracking="PX-7781"
    )
    client.force_login(manager_user)

    page = client.get(reverse("order_detail", args=[order.pk])).content.decode()

    assert '<h2 id="parcel-title">Parcel</h2>' in page
    assert '<span class="badge delivery-shipped">Shipped</span>' in page
    assert "29 Nov 2026, 13:33 PKT" in page  # when it shipped, in the store's zone
    assert "Shopify · " in page and "PX-7781" in page
    # The timeline words the update: what, from where, when, the tracking number.
    assert "Parcel update" in page and "From</span> Shopify" in page
    assert "Tracking</span> PX-7781" in page
    assert "Mark delivered" not in page  # a manager reads, does not mark


def test_an_agent_marks_a_parcel_delivered_then_returned_and_the_timeline_shows_both(
    client: Client, agent_user: User, campaign: Campaign
) -> None:
    order = queued_order(campaign, "KK-31", Call.Outcome.UNREACHABLE)
    client.force_login(agent_user)
    mark = reverse("order_delivery", args=[order.pk])
    panel = {**HTMX, "HX-Target": "order-panel"}

    delivered = client.post(mark, {"delivery": "delivered"}, headers=panel)

    html = delivered.content.decode()
    assert html.lstrip().startswith('<div id="order-panel">')  # the panel, swapped in place
    assert "Order KK-31 marked delivered by hand." in html
    assert '<span class="badge delivery-delivered">Delivered</span>' in html
    assert 'value="returned"' in html and 'value="delivered"' not in html
    order.refresh_from_db()
    assert (order.delivery, order.delivery_via, order.followup) == ("delivered", "hand", "")

    # Without JavaScript: the form posts, and the order's page is drawn again.
    returned = client.post(mark, {"delivery": "returned"})
    assert returned.status_code == 302
    assert returned["Location"] == reverse("order_detail", args=[order.pk])

    order.refresh_from_db()
    assert (order.delivery, order.delivery_via) == ("returned", "hand")
    page = client.get(returned["Location"]).content.decode()
    assert "Order KK-31 marked returned by hand." in page
    updates = OrderEvent.objects.filter(order=order, kind="delivery").order_by("id")
    assert [(e.data["delivery"], e.data.get("previous"), e.actor) for e in updates] == [
        ("delivered", None, agent_user),
        ("returned", "delivered", agent_user),
    ]
    assert page.count("Parcel update</span>") == 2
    assert "Parcel</span> Returned" in page and "Was</span> Delivered" in page
    assert "From</span> By hand" in page and "by bilal" in page
    # Its first news took the order out of the queue, saying why.
    assert "the parcel left: there is nothing left to decide" in page


def test_marking_what_the_parcel_already_is_says_so_and_changes_nothing(
    client: Client, admin_user: User, campaign: Campaign
) -> None:
    order = queued_order(campaign, "KK-32", Call.Outcome.CONFIRMED)
    record_delivery(order, "delivered", via=Order.DeliveryVia.SHEET)
    client.force_login(admin_user)

    response = client.post(
        reverse("order_delivery", args=[order.pk]),
        {"delivery": "delivered"},
        headers={**HTMX, "HX-Target": "order-panel"},
    )

    assert "Order KK-32 is already delivered; nothing changed." in response.content.decode()
    assert Order.objects.get(pk=order.pk).delivery_via == "sheet"
    assert OrderEvent.objects.filter(order=order, kind="delivery").count() == 1


@pytest.mark.parametrize(
    ("posted", "said"),
    [
        ({}, "Parcel not marked: mark it delivered or returned."),
        (
            {"delivery": "shipped"},
            "Parcel not marked: mark it delivered or returned, not “shipped”.",
        ),
        ({"delivery": "lost"}, "Parcel not marked: mark it delivered or returned, not “lost”."),
        # Whatever is posted is shown as text, cut short.
        ({"delivery": "<b>" + "x" * 100}, f"returned, not “&lt;b&gt;{'x' * 37}”."),
        ({"delivery": "\x00"}, "Parcel not marked: mark it delivered or returned, not “\x00”."),
    ],
)
def test_a_parcel_marked_as_anything_but_delivered_or_returned_is_refused_saying_so(
    client: Client, agent_user: User, campaign: Campaign, posted: dict[str, str], said: str
) -> None:
    order = queued_order(campaign, "KK-33", Call.Outcome.CONFIRMED)
    client.force_login(agent_user)

    response = client.post(
        reverse("order_delivery", args=[order.pk]),
        posted,
        headers={**HTMX, "HX-Target": "order-panel"},
    )

    assert response.status_code == 200
    assert said in response.content.decode()
    assert Order.objects.get(pk=order.pk).delivery == ""
    assert not OrderEvent.objects.filter(order=order, kind__startswith="delivery").exists()


def test_a_manager_cannot_mark_a_parcel(
    client: Client, manager_user: User, campaign: Campaign
) -> None:
    order = queued_order(campaign, "KK-34", Call.Outcome.CONFIRMED)
    client.force_login(manager_user)

    response = client.post(reverse("order_delivery", args=[order.pk]), {"delivery": "delivered"})

    assert response.status_code == 403
    assert Order.objects.get(pk=order.pk).delivery == ""


def test_an_agent_marks_the_parcel_of_an_order_another_agent_holds(
    client: Client, agent_user: User, admin_user: User, campaign: Campaign
) -> None:
    # Where the parcel is is the courier's fact, not the holder's judgement: no take-over first.
    order = queued_order(campaign, "KK-35", Call.Outcome.UNREACHABLE)
    assert actions.claim(order, admin_user)
    client.force_login(agent_user)

    client.post(reverse("order_delivery", args=[order.pk]), {"delivery": "returned"})

    order.refresh_from_db()
    assert (order.delivery, order.followup, order.claimed_by) == ("returned", "", None)


def test_once_the_parcel_shipped_the_decide_buttons_give_way_to_the_reason(
    client: Client, agent_user: User, campaign: Campaign
) -> None:
    order = queued_order(campaign, "KK-36", Call.Outcome.CONFIRMED)
    client.force_login(agent_user)
    url = reverse("order_detail", args=[order.pk])
    before = client.get(url).content.decode()
    assert "Cancel: tell the shop not to ship" in before and "Call again" in before

    record_delivery(order, "shipped", via=Order.DeliveryVia.WOOCOMMERCE)
    page = client.get(url).content.decode()

    assert "Cancel: tell the shop not to ship" not in page and "Call again" not in page
    assert "The parcel is known to be shipped: the decision can no longer change" in page
    assert 'value="delivered"' in page and 'value="returned"' in page  # still marked by hand
    # A page drawn before it shipped: its press is refused, saying why.
    stale = client.post(
        reverse("order_decide", args=[order.pk]),
        {"decision": "cancelled", "override": "1", "replaces": "confirmed", "note": "rang"},
        headers={**HTMX, "HX-Target": "order-panel"},
    )
    assert stale.status_code == 200
    assert "Not decided: Order KK-36 is known to be shipped" in stale.content.decode()
    assert Order.objects.get(pk=order.pk).decision == "confirmed"


def test_an_update_set_aside_is_worded_on_the_timeline(
    client: Client, manager_user: User, campaign: Campaign
) -> None:
    order = queued_order(campaign, "KK-37", Call.Outcome.CONFIRMED)
    record_delivery(order, "delivered", via=Order.DeliveryVia.SHOPIFY)
    record_delivery(order, "shipped", via=Order.DeliveryVia.SHEET)  # an older sheet: backwards
    client.force_login(manager_user)

    page = client.get(reverse("order_detail", args=[order.pk])).content.decode()

    assert "Parcel update ignored" in page
    assert "Ignored: the parcel is further along" in page
    assert "From</span> Courier sheet" in page and "Parcel is</span> Delivered" in page
    assert "backwards" not in page  # the code is not shown


def test_the_order_page_says_what_each_call_was_for(
    client: Client, manager_user: User, campaign: Campaign
) -> None:
    verification = final_call(campaign, "KK-38", Call.Outcome.CONFIRMED)
    notice = Call.objects.create(
        store=campaign.store,
        campaign=campaign,
        shop_order_id=verification.shop_order_id,
        order_id="KK-38",
        phone=verification.phone,
        amount=verification.amount,
        voice_id=103,
        text1=campaign.store.name,
        text2="KK-38",
        purpose=Call.Purpose.NOTICE,
        notice_of=Call.NoticeOf.SHIPPED,
    )
    client.force_login(manager_user)

    page = client.get(reverse("order_detail", args=[verification.shop_order_id]))

    html = page.content.decode()
    assert f"Call #{notice.pk}" in html and "Notice: order shipped" in html
    assert html.count("Notice:") == 1  # the verification call is shown as it always was
    assert page.context["latest"] == verification  # a notice is never the latest call
    assert not page.context["busy"]  # nor holds a decision back while it is queued
