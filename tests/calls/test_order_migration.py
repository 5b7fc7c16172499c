"""The migration that gives every existing call its order: built on the old schema, migrated,
compared."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db import connection

from calls.figures.stats import figure_aggregates
from calls.models import Call, Order
from tests.support.migrations import latest, migrate_to

BEFORE = [("calls", "0004_poll_pacing_and_pause_reason")]
# Every page's figures are aggregates over the calls. The ones below read columns that exist in
# both schemas (the decided_* ones read the later hand_decision column, empty after this one).
T0 = dt.datetime(2025, 5, 1, 7, 0, tzinfo=dt.UTC)


def figures() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """All the calls' figures, and per campaign, from the columns both schemas have."""
    aggregates = {
        name: aggregate
        for name, aggregate in figure_aggregates(by_purpose=False).items()
        if not name.startswith("decided_")
    }
    calls = Call.objects.order_by()
    per_campaign = calls.values("campaign").annotate(**aggregates).order_by("campaign")
    return calls.aggregate(**aggregates), list(per_campaign)


def old_world(apps: Any) -> None:
    """Calls as robodash kept them before orders: one order id in two campaigns, a call again,
    the same order id in another store, every kind of state."""
    Store, Campaign = apps.get_model("calls", "Store"), apps.get_model("calls", "Campaign")
    Call, CallEvent = apps.get_model("calls", "Call"), apps.get_model("calls", "CallEvent")
    karachi = Store.objects.create(name="Karachi Kitchenware", api_key_encrypted="x")
    lahore = Store.objects.create(name="Lahore Linens", api_key_encrypted="y")
    may = Campaign.objects.create(store=karachi, name="May")
    june = Campaign.objects.create(store=karachi, name="June")
    linens = Campaign.objects.create(store=lahore, name="May")

    def call(campaign: Any, order_id: str, minutes: int, **fields: Any) -> Any:
        made = Call.objects.create(
            store_id=campaign.store_id,
            campaign=campaign,
            order_id=order_id,
            phone="923001234567",
            amount=Decimal("1500.00") + minutes,
            voice_id=102,
            text1=campaign.store.name,
            text2=order_id,
            created_at=T0 + dt.timedelta(minutes=minutes),
            **fields,
        )
        CallEvent.objects.create(call=made, kind="created", data={"source": "csv"})
        return made

    final = {"state": "final", "finalized_at": T0 + dt.timedelta(hours=1)}
    first = call(
        may, "KK-1", 0, outcome="callback_requested", call_charges=Decimal("5.50"), **final
    )
    call(may, "KK-1", 5, parent=first, outcome="confirmed", call_charges=Decimal("11"), **final)
    call(may, "KK-2", 1, outcome="unreachable", call_charges=Decimal("0"), **final)
    failed = call(june, "KK-3", 2, outcome="failed", **final)
    CallEvent.objects.filter(call=failed).update(data={"source": "form"})
    call(june, "KK-2", 3)  # the overlapping file of the next day: called again
    call(linens, "KK-1", 4, state="in_progress")


def test_the_migration_groups_calls_into_orders_losing_nothing_and_changing_no_figure(
    past_database: None,
) -> None:
    old_apps = migrate_to(BEFORE)
    old_world(old_apps)
    # The columns both schemas have (later migrations moved the follow-up to the order).
    now_columns = {f.column for f in Call._meta.concrete_fields}
    columns = [
        f.column
        for f in old_apps.get_model("calls", "Call")._meta.concrete_fields
        if f.column in now_columns
    ]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(columns)} FROM calls_call ORDER BY id")
        calls_before = cursor.fetchall()
    figures_before = figures()

    migrate_to(latest())

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(columns)} FROM calls_call ORDER BY id")
        assert cursor.fetchall() == calls_before
    assert figures() == figures_before
    orders = {
        (o.store.name, o.order_id): (
            o.campaign.name,
            o.status,
            o.decision,
            o.source,
            o.amount,
            o.calls.count(),
        )
        for o in Order.objects.select_related("store", "campaign")
    }
    assert orders == {
        ("Karachi Kitchenware", "KK-1"): (
            "May",
            "confirmed",
            "confirmed",
            "csv",
            Decimal("1500.00"),
            2,
        ),
        ("Karachi Kitchenware", "KK-2"): ("May", "waiting", "", "csv", Decimal("1501.00"), 2),
        ("Karachi Kitchenware", "KK-3"): ("June", "rejected", "", "form", Decimal("1502"), 1),
        ("Lahore Linens", "KK-1"): ("May", "calling", "", "csv", Decimal("1504.00"), 1),
    }
    confirmed = Order.objects.get(store__name="Karachi Kitchenware", order_id="KK-1")
    assert confirmed.decided_by is None and confirmed.decided_at == T0 + dt.timedelta(hours=1)
    assert not Call.objects.filter(shop_order__isnull=True).exists()
