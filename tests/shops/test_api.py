"""POST /api/v1/orders and GET /api/v1/orders/<id>: bearer tokens per store, idempotent on the
order id, a reason per field for bad input, a rate limit per token, an OpenAPI description."""

from __future__ import annotations

from decimal import Decimal

import pytest

from calls.models import Call, Order, Store
from shops.models import ApiToken

pytestmark = pytest.mark.django_db
ORDER = {"order_id": "KK-1001", "phone": "0300 1234567", "amount": "1500.00"}


@pytest.fixture
def token(store) -> str:
    return ApiToken.issue(store, "website")[1]


def post(client, body, token: str | None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post(
        "/api/v1/orders", data=body, content_type="application/json", headers=headers
    )


def test_a_new_order_is_201_with_its_queued_call_and_a_repeat_is_200_with_no_new_call(
    client, store, token
):
    created = post(client, ORDER | {"customer_name": "Ayesha", "text3": "Eid"}, token)
    repeated = post(client, ORDER, token)

    assert created.status_code == 201, created.content
    assert repeated.status_code == 200
    body = created.json()
    assert (body["order_id"], body["status"], body["source"]) == ("KK-1001", "waiting", "api")
    assert body["phone"] == "923001234567" and Decimal(body["amount"]) == Decimal("1500.00")
    assert body["campaign"] == "API orders" and len(body["calls"]) == 1
    assert repeated.json()["calls"] == body["calls"]
    assert Call.objects.count() == 1 and Call.objects.get().text3 == "Eid"


def test_get_returns_the_orders_status_decision_calls_and_charges(client, store, token):
    post(client, ORDER, token)
    Call.objects.update(state="final", outcome="confirmed", dtmf=1, call_charges=Decimal("11.00"))
    Order.objects.update(
        status="confirmed", decision="confirmed", decided_via="key", decided_at="2026-11-29T10:00Z"
    )

    response = client.get("/api/v1/orders/KK-1001", headers={"Authorization": f"Bearer {token}"})

    body = response.json()
    assert response.status_code == 200
    assert (body["status"], body["decision"], body["decided_by"]) == (
        "confirmed",
        "confirmed",
        "customer",
    )
    assert Decimal(body["charges_total"]) == Decimal("11.00")
    assert body["calls"][0]["key_pressed"] == 1


def test_an_unknown_order_is_404(client, token):
    response = client.get("/api/v1/orders/NOPE", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 404 and "NOPE" in response.json()["errors"]["order_id"]


@pytest.mark.parametrize(
    ("order_id", "reason"),
    [("x" * 101, "at most 100"), ("KK%00", "(U+0000, NUL) at position 3")],
    ids=["too-long", "nul"],
)
def test_an_order_id_no_order_could_have_is_400_naming_it(client, token, order_id, reason):
    response = client.get(
        f"/api/v1/orders/{order_id}", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 400
    assert reason in response.json()["errors"]["order_id"]


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        (ORDER | {"phone": "021 3456 7890"}, "phone", "landline"),
        (ORDER | {"amount": "-5"}, "amount", "greater than 0"),
        (ORDER | {"amount": "lots"}, "amount", "decimal"),
        ({"phone": "03001234567", "amount": "10"}, "order_id", "required"),
        (ORDER | {"order_id": "x" * 101}, "order_id", "at most 100"),
        (ORDER | {"order_id": "   "}, "order_id", "is blank"),
        (ORDER | {"amount": "0.00"}, "amount", "greater than 0"),
        (ORDER | {"amount": "1e3"}, "amount", "digits with at most two decimals"),
        (ORDER | {"amount": 1500.001}, "amount", "no more than 2 decimal places"),
        (ORDER | {"customer_name": "Ay\x07esha"}, "customer_name", "(U+0007) at position 3"),
    ],
    ids=[
        "landline",
        "negative",
        "not-a-number",
        "missing-id",
        "long-id",
        "blank-id",
        "zero",
        "exponent",
        "three-decimals",
        "control-character",
    ],
)
def test_bad_input_is_400_with_a_reason_per_field_and_stores_nothing(
    client, token, body, field, reason
):
    response = post(client, body, token)

    assert response.status_code == 400
    assert reason in response.json()["errors"][field]
    assert not Order.objects.exists()


@pytest.mark.parametrize(
    ("auth", "reason"),
    [
        (None, "send the store's API token"),
        ("rdk_not-a-real-token", "unknown or revoked"),
        ("Basic abc", "send the store's API token"),
    ],
)
def test_a_missing_or_wrong_token_is_401_saying_which_in_the_one_error_shape(
    client, store, auth, reason
):
    headers = {"Authorization": auth if auth and " " in auth else f"Bearer {auth}"} if auth else {}
    response = client.post(
        "/api/v1/orders", data=ORDER, content_type="application/json", headers=headers
    )
    assert response.status_code == 401
    assert reason in response.json()["errors"]["token"]
    assert response["WWW-Authenticate"] == "Bearer"
    assert not Order.objects.exists()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{", "is not valid JSON: Expecting property name"),
        ('{"amount": NaN}', "is not valid JSON: NaN is not a JSON number"),
        (b'{"order_id": "\xff"}', "is not UTF-8"),
    ],
    ids=["cut-short", "nan", "not-utf8"],
)
def test_a_body_that_is_not_json_is_400_saying_why_in_the_one_error_shape(
    client, token, body, reason
):
    response = post(client, body, token)

    assert response.status_code == 400
    assert reason in response.json()["errors"]["body"]
    assert not Order.objects.exists()


@pytest.mark.parametrize(
    ("amount", "stored"),
    [(1500.5, "1500.50"), ("1500.5", "1500.50"), (1e2, "100.00"), ("0.05", "0.05")],
)
def test_an_amount_is_taken_as_a_json_number_or_as_digits(client, token, amount, stored):
    response = post(client, ORDER | {"amount": amount}, token)

    assert response.status_code == 201, response.content
    assert str(Order.objects.get().amount) == stored


def test_a_revoked_token_is_401_and_a_token_sees_only_its_own_stores_orders(client, store, token):
    post(client, ORDER, token)
    other = Store(name="Lahore Looms")
    other.api_key = "sk-other-key-000000"
    other.save()
    _, other_token = ApiToken.issue(other)
    assert (
        client.get(
            "/api/v1/orders/KK-1001", headers={"Authorization": f"Bearer {other_token}"}
        ).status_code
        == 404
    )
    ApiToken.objects.filter(store=store).update(revoked_at="2026-11-29T10:00Z")
    assert post(client, ORDER, token).status_code == 401


def test_past_the_rate_limit_a_token_gets_429_with_retry_after(client, token, settings):
    settings.ROBODASH_API_RATE_PER_MINUTE = 3
    statuses = [
        client.get("/api/v1/orders/X", headers={"Authorization": f"Bearer {token}"})
        for _ in range(4)
    ]

    assert [r.status_code for r in statuses] == [404, 404, 404, 429]
    assert 0 < int(statuses[-1]["Retry-After"]) <= 60


def test_the_openapi_description_names_both_operations(client):
    spec = client.get("/api/v1/openapi.json").json()
    assert {"/api/v1/orders", "/api/v1/orders/{order_id}"} <= set(spec["paths"])
    assert "bearer" in str(spec["components"]["securitySchemes"]).lower()
