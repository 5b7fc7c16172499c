"""The agents' pages run the same number of SQL queries with 10 calls as with 1,000: no N+1."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from calls.models import Call, CallEvent, Campaign, Order, OrderEvent, Store, User
from calls.transitions import FOLLOW_UP_OF_OUTCOME
from tests.support.orders import create_call, with_orders

pytestmark = pytest.mark.django_db

# Session, user, the page's own reads, the follow-up badge: a handful, whatever the data.
MOST_QUERIES_A_PAGE_MAY_RUN = 12


def add_calls(store: Store, count: int, start: int, agents: list[User]) -> None:
    """`count` calls over three campaigns, in every state; a third are open follow-ups (some
    claimed, some called again), each call with a couple of events."""
    campaigns = [
        Campaign.objects.get_or_create(store=store, name=f"Campaign {n}")[0] for n in range(3)
    ]
    now = timezone.now()
    outcomes = [
        Call.Outcome.UNREACHABLE,
        Call.Outcome.CALLBACK_REQUESTED,
        Call.Outcome.NEEDS_REVIEW,
        Call.Outcome.CONFIRMED,
        Call.Outcome.CANCELLED,
        "",
    ]
    calls = []
    for n in range(start, start + count):
        outcome = outcomes[n % len(outcomes)]
        calls.append(
            Call(
                store=store,
                campaign=campaigns[n % 3],
                order_id=f"ORD-{n:05d}",
                phone=f"92300{n:07d}",
                amount=Decimal("1000.00"),
                voice_id=102,
                state=Call.State.FINAL if outcome else Call.State.IN_PROGRESS,
                outcome=outcome,
                call_status=2 if outcome else 1,
                finalized_at=now - dt.timedelta(minutes=n) if outcome else None,
                created_at=now - dt.timedelta(minutes=n),
            )
        )
    created = Call.objects.bulk_create(with_orders(calls))
    for n, agent in enumerate(agents):  # some follow-ups claimed, by each agent
        claimed = [c.shop_order_id for c in created if c.outcome and c.pk % 8 == 4 * n]
        Order.objects.filter(pk__in=claimed).exclude(followup="").update(claimed_by=agent)
    children = [
        Call(
            store=store,
            campaign=call.campaign,
            parent=call,
            order_id=call.order_id,
            phone=call.phone,
            amount=call.amount,
            voice_id=102,
        )
        for call in created
        if call.outcome in FOLLOW_UP_OF_OUTCOME and call.pk % 5 == 0
    ]
    Call.objects.bulk_create(with_orders(children))
    CallEvent.objects.bulk_create(
        [
            CallEvent(call=call, kind=kind)
            for call in created
            for kind in (CallEvent.Kind.CREATED, CallEvent.Kind.SENT)
        ]
    )
    OrderEvent.objects.bulk_create(
        OrderEvent(order_id=call.shop_order_id, kind=OrderEvent.Kind.CLAIMED, actor=agents[0])
        for call in created
        if call.outcome
    )


def queries_for(client: Client, url: str) -> int:
    client.get(url)  # warm: the first request of a session may write it
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(captured.captured_queries)


def test_agent_pages_query_count_does_not_grow_with_the_number_of_calls(
    client: Client, store: Store, admin_user: User, agent_user: User
) -> None:
    agents = [admin_user, agent_user]
    add_calls(store, 10, 0, agents)
    target = Call.objects.filter(outcome=Call.Outcome.UNREACHABLE, parent__isnull=True).first()
    assert target is not None
    create_call(
        store=store,
        campaign=target.campaign,
        parent=target,
        order_id=target.order_id,
        phone=target.phone,
        amount=target.amount,
        voice_id=102,
    )
    client.force_login(admin_user)
    pages = {
        "calls": reverse("call_list"),
        "calls filtered": f"{reverse('call_list')}?store={store.pk}&q=0300&outcome=unreachable",
        "call": reverse("call_detail", args=[target.pk]),
        "follow-ups": reverse("followup_list"),
        "order": reverse("order_detail", args=[target.shop_order_id]),
        "calls searched by order id": f"{reverse('call_list')}?q={target.order_id}",
    }
    with_10 = {name: queries_for(client, url) for name, url in pages.items()}

    add_calls(store, 990, 10, agents)
    with_1000 = {name: queries_for(client, url) for name, url in pages.items()}

    assert Call.objects.filter(parent__isnull=True).count() == 1000
    assert Order.objects.count() == 1000
    assert with_1000 == with_10
    assert max(with_10.values()) <= MOST_QUERIES_A_PAGE_MAY_RUN, with_10
