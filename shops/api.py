"""The HTTP API a merchant's own site sends orders to (django-ninja: pydantic schemas and an
OpenAPI description at /api/v1/openapi.json, browsable at /api/v1/docs).

Every request carries `Authorization: Bearer <token>` (manage.py create_api_token, or a store's
Integrations page): the token names the store. Requests are counted per token per minute
(ROBODASH_API_RATE_PER_MINUTE) in the cache, which is Redis, shared by every web process; past
the limit the answer is 429 with Retry-After.

POST /api/v1/orders is idempotent on the order id: a new order is 201 with the order, a repeat
200 with the order as it stands (never a second call). Bad input is 400 with a reason per field;
every text, the path's order id too, is checked as the shops' orders are
(calls/intake/storable_text.py).

POST /api/v1/orders/<id>/delivery says what became of the order's parcel (shipped, delivered,
returned; when; the courier's tracking number). It is recorded by the one rule of which update
wins (calls/transitions.py record_delivery): the answer is the order's parcel as it now stands
and the verdict, so a repeat or an update that was ignored (older, or going backwards) says so.
Sending the same update again changes nothing.

The description is the behaviour: every status an operation answers is listed with its body, and
every refusal (400, 401, 404, 429) has the one shape `{"errors": {field: reason}}`.
tests/shops/test_api_description.py runs schemathesis against a live server to keep it so.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from decimal import Decimal
from typing import Annotated, Any, Literal

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Field, NinjaAPI, Path, Schema, Status
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as SchemaError
from ninja.security import HttpBearer

from calls.formatting import verdict_reasons
from calls.intake.single import create_single_call
from calls.models import Order
from calls.transitions import DeliveryVerdict, record_delivery
from shops.api_inputs import (
    PK_MOBILE,
    Amount,
    DecimalJsonParser,
    NotJson,
    OffsetTime,
    OrderId,
    PakistaniMobile,
    PastTime,
    Text,
)
from shops.intake import intake_campaign
from shops.models import ApiToken

ZERO = Decimal("0.00")


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after


class BearerToken(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        api_token = ApiToken.find(token)
        if api_token is None:
            return None
        window = int(time.time() // 60)
        # By the token's digest, not its row id: ids come again after a database is restored
        # or recreated (each test session's), and would inherit another token's count.
        key = f"robodash:api-rate:{api_token.token_hash}:{window}"
        cache.add(key, 0, timeout=120)
        if cache.incr(key) > settings.ROBODASH_API_RATE_PER_MINUTE:
            raise RateLimited(retry_after=60 - int(time.time() % 60))
        if api_token.last_used_at is None or timezone.now() - api_token.last_used_at > (
            dt.timedelta(minutes=1)
        ):  # a write a minute at most, not one per request
            ApiToken.objects.filter(pk=api_token.pk).update(last_used_at=timezone.now())
        return api_token


api = NinjaAPI(
    title="robodash orders API",
    version="1",
    description="Send cash-on-delivery orders to be verified by robocall; read their outcome.",
    auth=BearerToken(),
    parser=DecimalJsonParser(),
    urls_namespace="orders_api",
)


class OrderIn(Schema):
    order_id: OrderId = Field(max_length=100, description="your order id, e.g. 1001")
    phone: PakistaniMobile = Field(
        max_length=40,
        description=f"format {PK_MOBILE}: a Pakistani mobile number as people write it, "
        "03001234567, 0300-1234567, +92 300 1234567 or 923001234567; a landline, a foreign or "
        "an unknown network's number is refused with the reason",
    )
    amount: Amount
    customer_name: Text = Field("", max_length=200)
    campaign: Text = Field("", max_length=200, description="a batch label; default: API orders")
    voice_id: int | None = Field(None, gt=0, lt=2**31)
    text3: Text = Field("", max_length=200)
    text4: Text = Field("", max_length=200)
    text5: Text = Field("", max_length=200)
    placed_at: OffsetTime | None = Field(
        None,
        description="when the customer placed the order on your site; a store that holds stale "
        "orders holds one placed long before robodash receives it (none given: never stale)",
    )


class CallOut(Schema):
    id: int
    purpose: str = Field(
        description="verify (a call asking the customer to confirm), or notice (a call telling "
        "them the order shipped or was cancelled: it never changes the order)"
    )
    state: str
    outcome: str
    key_pressed: int | None
    charges: Decimal | None
    created_at: dt.datetime
    finalized_at: dt.datetime | None


class OrderOut(Schema):
    order_id: str
    status: str = Field(
        description="waiting, calling, confirmed, cancelled, callback_requested, no_input, "
        "unreachable, needs_review, withdrawn, rejected; skipped (the store's rules said not "
        "to call it) or held (they held it for a person)"
    )
    verdict: Literal["", "call", "skip", "hold"] = Field(
        description="what the store's rules said when the order arrived: call, skip or hold "
        "(blank: an order from before rules); kept when it is later called by hand"
    )
    verdict_reasons: list[dict[str, Any]] = Field(
        description="every rule that matched, hold's before skip's, as its code and values: "
        "below_min (with `min`), above_max (`max`), trusted (`delivered`), blocked (`reason`), "
        "returns (`returned`), stale (`hours`: how long after it was placed it arrived); more "
        "may be added",
        examples=[[{"rule": "below_min", "min": "1000.00"}]],
    )
    verdict_words: str = Field(description="those rules in words, e.g. 'below Rs 1,000.00'")
    decision: str
    decided_by: str | None  # "customer" (key press), an agent's username, or None
    decided_at: dt.datetime | None
    phone: str
    amount: Decimal
    customer_name: str
    campaign: str
    source: str
    created_at: dt.datetime
    charges_total: Decimal
    calls: list[CallOut]


class Errors(Schema):
    """Every refusal the API gives, whatever its status: what was wrong, by field."""

    errors: dict[str, str] = Field(
        description="a reason per field; `body` when the body is not a JSON object, `token` for "
        "401, `rate` for 429",
        examples=[{"amount": "Input should be greater than 0"}],
    )


# What each operation may answer besides its own results, with the one error shape.
REFUSED: dict[int, type[Schema]] = {400: Errors, 401: Errors, 429: Errors}


def refusals_described() -> dict[str, Any]:
    """The words and headers of REFUSED's answers, for an operation's openapi_extra (a new dict
    each time: ninja merges it into the description in place)."""
    return {
        "responses": {
            400: {"description": "Bad input: `errors` says what is wrong, by field"},
            401: {
                "description": "No token, or one that is unknown or revoked",
                "headers": {
                    "WWW-Authenticate": {
                        "description": "Bearer: how to authenticate",
                        "schema": {"type": "string"},
                    }
                },
            },
            429: {
                "description": "More requests this minute than ROBODASH_API_RATE_PER_MINUTE",
                "headers": {
                    "Retry-After": {
                        "description": "seconds until the token may send again",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 60},
                    }
                },
            },
        }
    }


def order_out(order: Order) -> dict[str, Any]:
    calls = list(order.calls.order_by("id"))
    charges = sum((call.call_charges or ZERO for call in calls), ZERO)
    return {
        "order_id": order.order_id,
        "status": order.status,
        "verdict": order.verdict,
        "verdict_reasons": order.verdict_reasons,
        "verdict_words": verdict_reasons(order.verdict_reasons),
        "decision": order.decision,
        "decided_by": order.decider,
        "decided_at": order.decided_at,
        "phone": order.phone,
        "amount": order.amount,
        "customer_name": order.customer_name,
        "campaign": order.campaign.name,
        "source": order.source,
        "created_at": order.created_at,
        "charges_total": charges,
        "calls": [
            {
                "id": call.pk,
                "purpose": call.purpose,
                "state": call.state,
                "outcome": call.outcome,
                "key_pressed": call.dtmf,
                "charges": call.call_charges,
                "created_at": call.created_at,
                "finalized_at": call.finalized_at,
            }
            for call in calls
        ],
    }


def _order(api_token: ApiToken, order_id: str) -> Order | None:
    return (
        Order.objects.select_related("campaign", "decided_by")
        .filter(store_id=api_token.store_id, order_id=order_id)
        .first()
    )


@api.post(
    "/orders",
    response={200: OrderOut, 201: OrderOut, **REFUSED},
    openapi_extra=refusals_described(),
)
def create_order(request: HttpRequest, data: OrderIn) -> Status:
    api_token: ApiToken = request.auth  # type: ignore[attr-defined]
    existing = _order(api_token, data.order_id.strip())
    if existing is not None:
        return Status(200, order_out(existing))  # idempotent: the same order, no second call
    store = api_token.store
    campaign = intake_campaign(store, Order.Source.API, data.campaign.strip())
    texts = {name: value for name in ("text3", "text4", "text5") if (value := getattr(data, name))}
    try:
        created = create_single_call(
            campaign,
            phone=data.phone,
            amount=data.amount,
            order_id=data.order_id,
            store_name=store.name,
            voice_id=data.voice_id,
            source=Order.Source.API,
            customer_name=data.customer_name.strip(),
            placed_at=data.placed_at,
            **texts,
        )
    except ValidationError as error:
        known = _order(api_token, data.order_id.strip())
        if known is not None:  # sent twice at once: the other request stored it
            return Status(200, order_out(known))
        return Status(
            400, {"errors": {field: " ".join(m) for field, m in error.message_dict.items()}}
        )
    order = _order(api_token, created.order_id)
    assert order is not None
    return Status(201, order_out(order))


@api.get(
    "/orders/{order_id}",
    response={200: OrderOut, 404: Errors, **REFUSED},
    openapi_extra=refusals_described(),
)
def get_order(request: HttpRequest, order_id: Annotated[OrderId, Path(max_length=100)]) -> Status:
    order = _order(request.auth, order_id)  # type: ignore[attr-defined]
    if order is None:
        return Status(404, {"errors": {"order_id": f"no order {order_id!r} in this store"}})
    return Status(200, order_out(order))


class DeliveryIn(Schema):
    status: Literal["shipped", "delivered", "returned"] = Field(
        description="what became of the parcel: shipped (it left), delivered, or returned (it "
        "came back: refused, not found, sent back)"
    )
    at: PastTime | None = Field(
        None,
        description="when the parcel got there; default: when robodash receives this. Delivered "
        "and returned replace each other only with a later time than the one robodash has",
    )
    tracking: Text = Field("", max_length=100, description="the courier's tracking number")


class DeliveryOut(Schema):
    order_id: str
    delivery: Literal["", "shipped", "delivered", "returned"] = Field(
        description="the order's parcel now (blank: not known to have shipped)"
    )
    delivery_at: dt.datetime | None = Field(description="when it got there")
    delivery_via: str = Field(
        description="where robodash learnt it: shopify, woocommerce, api, sheet (a courier's "
        "sheet) or hand"
    )
    tracking: str
    verdict: Literal["applied", "repeat", "backwards", "not_later"] = Field(
        description="what became of this update: applied; repeat (the parcel was already "
        "known to be there: nothing changed); backwards (ignored: the parcel is further "
        "along, e.g. shipped after delivered); not_later (ignored: delivered and returned "
        "replace each other only with a later time)"
    )


@api.post(
    "/orders/{order_id}/delivery",
    response={200: DeliveryOut, 404: Errors, **REFUSED},
    openapi_extra=refusals_described(),
)
def record_order_delivery(
    request: HttpRequest, order_id: Annotated[OrderId, Path(max_length=100)], data: DeliveryIn
) -> Status:
    """Say what became of an order's parcel. The same update sent again changes nothing."""
    order = _order(request.auth, order_id)  # type: ignore[attr-defined]
    if order is None:
        return Status(404, {"errors": {"order_id": f"no order {order_id!r} in this store"}})
    verdict = record_delivery(
        order,
        data.status,
        via=Order.DeliveryVia.API,
        at=data.at,
        tracking=data.tracking.strip(),
    )
    order.refresh_from_db(fields=["delivery", "delivery_at", "delivery_via", "tracking"])
    return Status(
        200,
        {
            "order_id": order.order_id,
            "delivery": order.delivery,
            "delivery_at": order.delivery_at,
            "delivery_via": order.delivery_via,
            "tracking": order.tracking,
            "verdict": DeliveryVerdict(verdict).value,
        },
    )


NOT_THE_FIELD = ("body", "data", "path")  # where ninja read a value, in pydantic's location


@api.exception_handler(SchemaError)
def schema_errors(request: HttpRequest, error: SchemaError) -> HttpResponse:
    """400, not ninja's 422, with one reason per field, as the rest of the API answers."""
    reasons = {}
    for problem in error.errors:
        location = [str(part) for part in problem.get("loc", ()) if part not in NOT_THE_FIELD]
        if problem.get("type") == "value_error":  # our own reason, without pydantic's prefix
            reasons[".".join(location) or "body"] = str(problem["ctx"]["error"])
        else:
            reasons[".".join(location) or "body"] = str(problem.get("msg", "invalid"))
    return api.create_response(request, {"errors": reasons}, status=400)


@api.exception_handler(HttpError)
def unreadable_body(request: HttpRequest, error: HttpError) -> HttpResponse:
    """ninja's own 400 for a body it cannot parse, in the one error shape and saying why (ninja
    says only "Cannot parse request body", and in its own shape). ninja raises no other HttpError
    here; were it to, its words go in the same shape."""
    cause = error.__cause__
    if isinstance(cause, json.JSONDecodeError):
        reason = f"is not valid JSON: {cause.msg} (line {cause.lineno}, column {cause.colno})"
    elif isinstance(cause, NotJson):
        reason = f"is not valid JSON: {cause}"
    elif isinstance(cause, UnicodeDecodeError):
        reason = "is not UTF-8 text"
    elif cause is not None:
        reason = "could not be read as JSON"
    else:
        return api.create_response(
            request, {"errors": {"request": str(error)}}, status=error.status_code
        )
    return api.create_response(request, {"errors": {"body": reason}}, status=400)


@api.exception_handler(AuthenticationError)
def unauthenticated(request: HttpRequest, error: AuthenticationError) -> HttpResponse:
    sent = request.headers.get("Authorization", "")
    if sent.partition(" ")[0].lower() == "bearer" and sent.partition(" ")[2].strip():
        reason = "this token is unknown or revoked"
    else:
        reason = "send the store's API token as Authorization: Bearer <token>"
    response = api.create_response(request, {"errors": {"token": reason}}, status=401)
    response["WWW-Authenticate"] = "Bearer"
    return response


@api.exception_handler(RateLimited)
def rate_limited(request: HttpRequest, error: RateLimited) -> HttpResponse:
    response = api.create_response(
        request, {"errors": {"rate": "too many requests for this token"}}, status=429
    )
    response["Retry-After"] = str(error.retry_after)
    return response
