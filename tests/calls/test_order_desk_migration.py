"""The migration that moves the follow-up queue from calls to orders: built on the old schema,
migrated, compared."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from calls.models import Order
from tests.support import migrations

BEFORE = [("calls", "0020_store_voice_and_retries_bounds")]


def old_world(apps: Any) -> None:
    """Orders as the old schema left them: open follow-ups on calls (one claimed), handled
    ones, decisions by key press and by hand, answered-without-a-key calls old and new."""
    Store, Campaign = apps.get_model("calls", "Store"), apps.get_model("calls", "Campaign")
    Order, Call = apps.get_model("calls", "Order"), apps.get_model("calls", "Call")
    User = apps.get_model("calls", "User")
    agent = User.objects.create(username="bilal", role="agent")
    store = Store.objects.create(name="Karachi Kitchenware", api_key_encrypted="x")
    campaign = Campaign.objects.create(store=store, name="May")
    now = timezone.now()

    def order(order_id: str, **fields: Any) -> Any:
        return Order.objects.create(
            store=store,
            campaign=campaign,
            order_id=order_id,
            phone="923001234567",
            amount=Decimal(900),
            voice_id=102,
            **fields,
        )

    def call(of: Any, outcome: str, age: dt.timedelta, **fields: Any) -> Any:
        return Call.objects.create(
            store=store,
            campaign=campaign,
            shop_order=of,
            order_id=of.order_id,
            phone=of.phone,
            amount=of.amount,
            voice_id=102,
            state="final",
            outcome=outcome,
            finalized_at=now - age,
            created_at=now - age,
            **fields,
        )

    hour, week = dt.timedelta(hours=1), dt.timedelta(days=7)
    call(order("CLAIMED", status="unreachable"), "unreachable", week, assigned_to=agent)
    call(order("HANDLED", status="callback_requested"), "callback_requested", hour, handled_at=now)
    call(order("NEW-NO-KEY", status="no_input"), "no_input", hour)
    call(order("OLD-NO-KEY", status="no_input"), "no_input", week)
    pressed = order("PRESSED", status="confirmed", decision="confirmed", decided_at=now)
    call(pressed, "confirmed", hour)
    by_hand = order(
        "BY-HAND", status="cancelled", decision="cancelled", decided_at=now, decided_by=agent
    )
    call(by_hand, "unreachable", hour, handled_at=now, handled_by=agent)
    order("REJECTED-TODAY", status="rejected", rejected_reason="not a mobile")
    order("REJECTED-LONG-AGO", status="rejected", created_at=now - week)


@pytest.mark.django_db(transaction=True)
def test_open_follow_ups_move_to_their_orders_and_who_decided_becomes_a_value() -> None:
    latest = migrations.latest()
    try:
        old_world(migrations.migrate_to(BEFORE))

        migrations.migrate_to(latest)

        orders = {
            o.order_id: (o.followup, o.claimed_by.username if o.claimed_by else None, o.decided_via)
            for o in Order.objects.select_related("claimed_by")
        }
        assert orders == {
            "CLAIMED": ("unreachable", "bilal", ""),
            "HANDLED": ("", None, ""),
            "NEW-NO-KEY": ("no_input", None, ""),
            "OLD-NO-KEY": ("", None, ""),  # history: counted as handled
            "PRESSED": ("", None, "key"),
            "BY-HAND": ("", None, "agent"),
            "REJECTED-TODAY": ("rejected", None, ""),
            "REJECTED-LONG-AGO": ("", None, ""),
        }
        claimed = Order.objects.get(order_id="CLAIMED")
        assert claimed.followup_at == claimed.calls.get().finalized_at
    finally:
        migrations.migrate_to(latest)
