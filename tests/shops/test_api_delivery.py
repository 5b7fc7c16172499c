"""POST /api/v1/orders/<id>/delivery: what became of an order's parcel, recorded by the rule of
which update wins, answered with the parcel as it stands and whether this update was applied or
ignored; a reason per field for bad input; the store's token only."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from calls.models import Order, OrderEvent, Store
from calls.transitions import record_delivery
from shops.models import ApiToken

pytestmark = pytest.mark.django_db
ORDER = {"order_id": "KK-1001", "phone": "0300 1234567", "amount": "1500.00"}


@pytest.fixture
def token(store) -> str:
    return ApiToken.issue(store, "website")[1]


@pytest.fixture
def order(client, token) -> Order:
    created = client.post(
        "/api/v1/orders",
        data=ORDER,
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert created.status_code == 201, created.content
    return Order.objects.get(order_id="KK-1001")


def deliver(client, token: str | None, body: object, order_id: str = "KK-1001"):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post(
        f"/api/v1/orders/{order_id}/delivery",
        data=body,
        content_type="application/json",
        headers=headers,
    )


def test_a_delivery_is_recorded_with_its_time_and_tracking_and_says_applied(client, token, order):
    answer = deliver(
        client,
        token,
        {"status": "delivered", "at": "2026-11-02T14:30:00+05:00", "tracking": " TCS-778 "},
    )

    assert answer.status_code == 200, answer.content
    assert answer.json() == {
        "order_id": "KK-1001",
        "delivery": "delivered",
        "delivery_at": "2026-11-02T09:30:00Z",
        "delivery_via": "api",
        "tracking": "TCS-778",
        "verdict": "applied",
    }
    order.refresh_from_db()
    assert order.delivery_at == dt.datetime(2026, 11, 2, 9, 30, tzinfo=dt.UTC)
    assert order.events.filter(kind=OrderEvent.Kind.DELIVERY, data__via="api").count() == 1


def test_without_a_time_it_is_dated_when_received_and_a_repeat_changes_nothing(
    client, token, order
):
    first = deliver(client, token, {"status": "shipped"})
    events = order.events.count()
    again = deliver(client, token, {"status": "shipped", "tracking": "OTHER"})

    assert first.json()["verdict"] == "applied"
    when = dt.datetime.fromisoformat(first.json()["delivery_at"])
    assert abs(when - timezone.now()) < dt.timedelta(minutes=1)
    assert again.status_code == 200
    assert again.json() == first.json() | {"verdict": "repeat"}
    assert order.events.count() == events


def test_an_update_that_lost_is_answered_as_ignored_with_the_parcel_as_it_stands(
    client, token, order
):
    record_delivery(order, Order.Delivery.DELIVERED, via="shopify", at=timezone.now())

    backwards = deliver(client, token, {"status": "shipped"})
    older = deliver(client, token, {"status": "returned", "at": "2020-01-01T00:00:00Z"})

    assert backwards.status_code == older.status_code == 200
    assert (backwards.json()["verdict"], backwards.json()["delivery"]) == ("backwards", "delivered")
    assert (older.json()["verdict"], older.json()["delivery_via"]) == ("not_later", "shopify")
    order.refresh_from_db()
    assert order.delivery == Order.Delivery.DELIVERED


def test_an_unknown_order_is_404_and_another_stores_order_is_unknown(client, token, store):
    other = Store(name="Lahore Looms")
    other.api_key = "another-key"
    other.save()
    theirs = ApiToken.issue(other, "site")[1]
    client.post(
        "/api/v1/orders",
        data=ORDER,
        content_type="application/json",
        headers={"Authorization": f"Bearer {theirs}"},
    )

    answer = deliver(client, token, {"status": "delivered"})

    assert answer.status_code == 404
    assert answer.json() == {"errors": {"order_id": "no order 'KK-1001' in this store"}}
    assert not Order.objects.exclude(delivery="").exists()


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"status": "lost"}, "status", "'shipped', 'delivered' or 'returned'"),
        ({}, "status", "required"),
        ({"status": "delivered", "at": "2026-11-02T14:30:00"}, "at", "with its offset"),
        ({"status": "delivered", "at": "2026-11-02 14:30+05:00"}, "at", "with its offset"),
        ({"status": "delivered", "at": 1700000000}, "at", "with its offset"),
        ({"status": "delivered", "at": "2026-02-30T10:00:00Z"}, "at", "that exists"),
        ({"status": "delivered", "at": "2999-01-01T00:00:00Z"}, "at", "is in the future"),
        ({"status": "delivered", "tracking": "x" * 101}, "tracking", "at most 100"),
        ({"status": "delivered", "tracking": "A\x00"}, "tracking", "(U+0000, NUL)"),
        (["delivered"], "status", "required"),
    ],
    ids=[
        "unknown-status",
        "no-status",
        "naive-time",
        "not-rfc3339",
        "a-number",
        "no-such-day",
        "future",
        "long-tracking",
        "nul",
        "not-an-object",
    ],
)
def test_bad_input_is_400_with_a_reason_per_field_and_changes_nothing(
    client, token, order, body, field, reason
):
    answer = deliver(client, token, body)

    assert answer.status_code == 400, answer.content
    assert reason in answer.json()["errors"][field]
    order.refresh_from_db()
    assert order.delivery == ""


def test_a_time_a_few_minutes_ahead_of_robodashs_clock_is_taken(client, token, order):
    ahead = (timezone.now() + dt.timedelta(minutes=2)).isoformat()

    assert deliver(client, token, {"status": "shipped", "at": ahead}).status_code == 200


def test_no_token_or_a_revoked_one_is_401(client, token, order):
    ApiToken.objects.update(revoked_at=timezone.now())

    assert deliver(client, None, {"status": "delivered"}).status_code == 401
    assert deliver(client, token, {"status": "delivered"}).status_code == 401
    order.refresh_from_db()
    assert order.delivery == ""


def test_the_description_lists_the_operation_its_answers_and_the_times_format(client):
    description = client.get("/api/v1/openapi.json").json()

    operation = description["paths"]["/api/v1/orders/{order_id}/delivery"]["post"]
    assert set(operation["responses"]) == {"200", "400", "401", "404", "429"}
    schema = description["components"]["schemas"]["DeliveryIn"]["properties"]
    at = schema["at"]["anyOf"][0]
    assert (at["type"], at["format"]) == ("string", "past-date-time")
    assert schema["status"]["enum"] == ["shipped", "delivered", "returned"]
