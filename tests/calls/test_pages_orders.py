"""Orders on the pages: the order page, the follow-up queue as a queue of orders (one row per
order, call again asked and race-safe, decisions by hand, claims released and taken over) and
the Calls page's way to an order."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import pytest
from django.db import connections, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from calls import actions
from calls.models import Call, CallEvent, Campaign, Order, Store, User
from calls.transitions import finish
from tests.support.orders import create_call

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign(store: Store) -> Campaign:
    return Campaign.objects.create(store=store, name="Eid sale")


def final_call(campaign: Campaign, order_id: str, outcome: str, **fields: Any) -> Call:
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
        finalized_at=timezone.now(),
        **fields,
    )


def queue_rows(client: Client) -> list[str]:
    response = client.get(reverse("followup_list"))
    assert response.status_code == 200
    return [row["call"].order_id for row in response.context["rows"]]


def test_an_order_called_back_twice_is_one_row_of_the_queue(
    client: Client, agent_user: User, campaign: Campaign
) -> None:
    first = final_call(campaign, "KK-2002", Call.Outcome.CALLBACK_REQUESTED)
    other = final_call(campaign, "KK-2003", Call.Outcome.UNREACHABLE)
    client.force_login(agent_user)
    again = actions.call_again(first, agent_user)
    assert [row["call"].pk for row in client.get(reverse("followup_list")).context["rows"]][:1] == [
        first.pk
    ]  # the call again is in flight: the row stays, saying so

    Call.objects.filter(pk=again.pk).update(state=Call.State.IN_PROGRESS)
    with transaction.atomic():
        finish(
            Call.objects.select_for_update().get(pk=again.pk),
            Call.Outcome.CALLBACK_REQUESTED,
            timezone.now(),
        )

    response = client.get(reverse("followup_list"))
    # Oldest outcome first: KK-2003's, then the call again's.
    assert [row["call"].pk for row in response.context["rows"]] == [other.pk, again.pk]
    first.refresh_from_db()
    assert (
        first.handled_note == f"Followed up by call #{again.pk} (callback requested (pressed 3))."
    )
    page = response.content.decode()
    assert f'href="/calls/{first.pk}/"' in page and f'href="/calls/{again.pk}/"' in page
    assert 'hx-trigger="every 10s' in page  # new follow-ups appear without a reload


def test_a_withdrawn_call_again_leaves_the_order_in_the_queue(
    client: Client, agent_user: User, campaign: Campaign
) -> None:
    first = final_call(campaign, "KK-2004", Call.Outcome.UNREACHABLE)
    again = actions.call_again(first, agent_user)
    assert actions.withdraw(again, agent_user)
    client.force_login(agent_user)
    assert queue_rows(client) == ["KK-2004"]


def test_call_again_asks_what_it_costs_at_the_stores_rate(
    client: Client, agent_user: User, campaign: Campaign, store: Store
) -> None:
    store.call_rate = Decimal("5.50")
    store.save()
    call = final_call(campaign, "KK-1", Call.Outcome.CALLBACK_REQUESTED)
    client.force_login(agent_user)

    page = client.get(reverse("followup_list")).content.decode()
    order_page = client.get(reverse("order_detail", args=[call.shop_order_id])).content.decode()

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
    first = final_call(campaign, "KK-9", Call.Outcome.UNREACHABLE)
    # Two rows of the same order (as the old queue showed them): each agent presses one.
    second = final_call(
        campaign, "KK-9", Call.Outcome.CALLBACK_REQUESTED, parent=first, shop_order=first.shop_order
    )
    start = threading.Barrier(2)
    results: dict[str, Any] = {}

    def press(user: User, call: Call) -> None:
        try:
            start.wait(5)
            results[user.username] = actions.call_again(call, user)
        except Exception as exc:
            results[user.username] = exc
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=press, args=(agent_user, first)),
        threading.Thread(target=press, args=(admin_user, second)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)

    placed = [r for r in results.values() if isinstance(r, Call)]
    refused = [r for r in results.values() if isinstance(r, actions.ActionRefused)]
    assert len(placed) == 1 and len(refused) == 1, results
    assert "still queued" in str(refused[0])
    assert first.shop_order.calls.count() == 3


def test_an_agent_decides_an_order_by_hand_from_the_queue(
    client: Client, agent_user: User, campaign: Campaign
) -> None:
    call = final_call(campaign, "KK-5", Call.Outcome.CALLBACK_REQUESTED)
    client.force_login(agent_user)

    response = client.post(
        reverse("order_decide", args=[call.shop_order_id]),
        {"decision": "confirmed", "note": "Confirmed on WhatsApp"},
        headers={"HX-Request": "true", "HX-Target": f"followup-{call.pk}"},
    )

    assert response.status_code == 200
    assert "Handled by you" in response.content.decode()
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
    assert "Decide by hand" not in page  # a manager reads, does not act


def test_an_agent_cannot_mark_handled_what_another_holds_unless_taking_it_over(
    client: Client, agent_user: User, admin_user: User, campaign: Campaign
) -> None:
    call = final_call(campaign, "KK-7", Call.Outcome.UNREACHABLE)
    assert actions.claim(call, admin_user)
    client.force_login(agent_user)

    refused = client.post(reverse("call_handled", args=[call.pk]), {"note": "done"}, follow=True)

    assert "amina holds this follow-up; take it over first" in refused.content.decode()
    call.refresh_from_db()
    assert call.handled_at is None

    client.post(reverse("call_take_over", args=[call.pk]))
    client.post(reverse("call_handled", args=[call.pk]), {"note": "done"})

    call.refresh_from_db()
    assert (call.assigned_to, call.handled_by) == (agent_user, agent_user)
    taken = call.events.get(kind=CallEvent.Kind.TAKEN_OVER)
    assert (taken.actor, taken.data) == (agent_user, {"previous": "amina"})


def test_a_claim_can_be_released(client: Client, agent_user: User, campaign: Campaign) -> None:
    call = final_call(campaign, "KK-8", Call.Outcome.NEEDS_REVIEW)
    actions.claim(call, agent_user)
    client.force_login(agent_user)

    client.post(reverse("call_release", args=[call.pk]))

    call.refresh_from_db()
    assert call.assigned_to is None
    assert call.events.filter(kind=CallEvent.Kind.RELEASED, actor=agent_user).exists()


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
