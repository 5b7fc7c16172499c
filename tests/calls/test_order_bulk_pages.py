"""Bulk actions on /orders/: tick rows, or take every order matching the filters, then confirm,
cancel, call again or export them; a batch over the request's share runs in a worker while its
page shows the progress."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from calls import order_batches
from calls.models import Call, Campaign, Order, OrderBatch, OrderEvent, Store, User
from tests.support.orders import create_call
from tests.support.pages import text_of

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def campaign(store: Store) -> Campaign:
    return Campaign.objects.create(store=store, name="Eid sale")


def unanswered(campaign: Campaign, order_id: str) -> Order:
    call = create_call(
        store=campaign.store,
        campaign=campaign,
        order_id=order_id,
        phone="923001234567",
        amount=Decimal(900),
        voice_id=102,
        state=Call.State.FINAL,
        outcome=Call.Outcome.NO_INPUT,
        finalized_at=timezone.now(),
    )
    return Order.objects.get(pk=call.shop_order_id)


def test_an_agent_cancels_the_ticked_orders_each_as_its_own_decision(
    client: Client, agent_user: User, campaign: Campaign
) -> None:
    first, second, untouched = (unanswered(campaign, f"KK-{n}") for n in range(3))
    client.force_login(agent_user)
    page = text_of(client.get(reverse("order_list")))
    assert 'form="bulk-form"' in page and "Cancel: tell the shops not to ship" in page

    answer = client.post(
        reverse("order_bulk"),
        {
            "scope": "selected",
            "order": [first.pk, second.pk],
            "action": "cancel",
            "note": "no answer on WhatsApp",
            "filters": "followup=open",
        },
        follow=True,
    )

    assert answer.redirect_chain[-1][0] == f"{reverse('order_list')}?followup=open"
    assert "2 orders cancelled by hand: the shops are told not to ship them." in text_of(answer)
    for order in (first, second):
        order.refresh_from_db()
        assert (order.decision, order.decided_by, order.followup) == ("cancelled", agent_user, "")
        assert order.events.filter(kind=OrderEvent.Kind.DECIDED).count() == 1
    untouched.refresh_from_db()
    assert untouched.decision == "" and untouched.followup == Order.FollowUp.NO_INPUT


def test_every_order_matching_the_filter_can_be_confirmed_and_decided_ones_are_left(
    client: Client, admin_user: User, campaign: Campaign, other_campaign: Campaign
) -> None:
    here = [unanswered(campaign, f"KK-{n}") for n in range(2)]
    elsewhere = unanswered(other_campaign, "LL-1")
    Order.objects.filter(pk=here[1].pk).update(
        decision="cancelled", decided_via="agent", decided_at=timezone.now(), decided_by=admin_user
    )
    client.force_login(admin_user)

    answer = client.post(
        reverse("order_bulk"),
        {"scope": "filter", "action": "confirm", "filters": f"store={campaign.store_id}"},
        follow=True,
    )

    page = text_of(answer)
    assert "1 order confirmed by hand: the shops are told to ship it." in page
    assert "Left as they were: 1 already had a decision." in page
    assert Order.objects.get(pk=here[0].pk).decision == "confirmed"
    assert Order.objects.get(pk=here[1].pk).decision == "cancelled"
    assert Order.objects.get(pk=elsewhere.pk).decision == ""


@pytest.fixture
def other_campaign(db) -> Campaign:
    other = Store(name="Lahore Looms", timezone="Asia/Karachi")
    other.api_key = "other-key"
    other.save()
    return Campaign.objects.create(store=other, name="May")


def test_a_bulk_action_with_nothing_chosen_or_unknown_changes_nothing_and_says_why(
    client: Client, agent_user: User, campaign: Campaign
) -> None:
    order = unanswered(campaign, "KK-1")
    client.force_login(agent_user)

    nothing = client.post(
        reverse("order_bulk"), {"scope": "selected", "action": "cancel"}, follow=True
    )
    unknown = client.post(
        reverse("order_bulk"),
        {"scope": "selected", "order": [order.pk, "x", "9" * 30], "action": "shred"},
        follow=True,
    )

    assert "Nothing was changed: Select at least one order." in text_of(nothing)
    assert "Nothing was changed: Choose confirm, cancel or call again." in text_of(unknown)
    assert Order.objects.get(pk=order.pk).decision == ""
    assert not OrderBatch.objects.exists()


def test_the_ticked_orders_export_as_csv_for_a_manager_and_not_for_an_agent(
    client: Client, manager_user: User, agent_user: User, campaign: Campaign
) -> None:
    chosen, other = unanswered(campaign, "KK-1"), unanswered(campaign, "KK-2")
    client.force_login(manager_user)
    page = text_of(client.get(reverse("order_list")))
    assert "Export CSV" in page and "Cancel: tell the shops" not in page  # no decisions

    answer = client.post(
        reverse("order_bulk"), {"scope": "selected", "order": [chosen.pk], "action": "export"}
    )

    body = b"".join(answer.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(body)))
    assert [row[0] for row in rows[1:]] == ["KK-1"]
    assert "orders-selected-all-stores" in answer["Content-Disposition"]
    client.force_login(agent_user)
    refused = client.post(
        reverse("order_bulk"), {"scope": "selected", "order": [other.pk], "action": "export"}
    )
    assert refused.status_code == 403
    client.force_login(manager_user)
    decision = client.post(
        reverse("order_bulk"), {"scope": "selected", "order": [other.pk], "action": "cancel"}
    )
    assert decision.status_code == 403


def test_a_large_batch_opens_its_progress_page_which_stops_polling_when_done(
    client: Client, agent_user: User, campaign: Campaign
) -> None:
    batch = OrderBatch.objects.create(
        action="call_again", created_by=agent_user, order_ids=[1, 2, 3], position=1, changed=1
    )
    client.force_login(agent_user)

    running = client.get(
        reverse("order_batch", args=[batch.pk]), {"back": "https://evil.example/"}, **HTMX
    )
    assert running.status_code == 200
    assert 'value="1"' in running.content.decode() and "every 2s" in running.content.decode()
    page = text_of(client.get(reverse("order_batch", args=[batch.pk])))
    assert "1 of 3 orders done, 1 changed." in page and "https://evil.example/" not in page

    OrderBatch.objects.filter(pk=batch.pk).update(
        status="done", position=3, skipped={"busy": 2}, finished_at=timezone.now()
    )
    done = client.get(reverse("order_batch", args=[batch.pk]), **HTMX)
    assert done.status_code == 286
    assert "Left as they were: 2 a call was still in flight." in text_of(done)


def test_a_post_over_the_request_share_goes_to_the_worker_and_its_page(
    client: Client, agent_user: User, campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    orders = [unanswered(campaign, f"KK-{n}") for n in range(3)]
    monkeypatch.setattr(order_batches, "IN_REQUEST", 2)  # this process only: no worker runs
    client.force_login(agent_user)

    answer = client.post(
        reverse("order_bulk"),
        {"scope": "selected", "order": [o.pk for o in orders], "action": "confirm"},
    )

    batch = OrderBatch.objects.get()
    assert answer["Location"].startswith(reverse("order_batch", args=[batch.pk]))
    assert batch.position == 0 and batch.status == "running"
