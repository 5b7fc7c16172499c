"""Hostile values in every GET parameter of every page and export, for each role, and in the
orders a shop or the API sends: never a 5xx.

A bad value in a page's parameter is a 400 or the page with a form error; the sweep asserts only
that nothing answers 5xx (the pages' own tests check what they say). Each parameter is swept on
its own, the others staying valid, so a value reaches the code behind that one parameter.

A shop's signed order with a value PostgreSQL refuses (a NUL, a lone surrogate, an amount past
the column) is kept as rejected with its reason and answered 200, so the shop does not retry it;
the API answers 400 naming the field. A 5xx would make a shop retry, and in the end drop the
subscription.
"""

from __future__ import annotations

import json
from urllib.parse import quote, unquote_to_bytes

import pytest
from django.test import Client
from django.urls import URLPattern

from calls import urls as calls_urls
from calls.models import Call, Order
from shops.models import ApiToken, ReceivedWebhook
from tests.calls import test_permissions
from tests.shops import test_webhooks
from tests.shops.test_webhooks import SHOPIFY_SECRET, WOO_SECRET, shopify_order, signed, woo_order
from tests.support.pages import text_of
from tests.support.webhooks import taken_in

pytestmark = pytest.mark.django_db

# Already percent-encoded where the raw bytes matter (non-UTF-8, NUL, control characters).
HOSTILE = [
    quote("9999-12-31"),
    quote("0001-01-01"),
    quote("275760-09-13"),
    quote("2026-02-30"),
    quote("-1"),
    quote("-99999999999999999999"),
    quote("99999999999999999999"),
    quote("1e308"),
    "NaN",
    "%00",
    "2026-01-01%00",
    "%01%1b%7f",
    "%ff%fe%c3%28",
    quote("a" * 5000),
    quote("' OR 1=1 --"),
    quote('"><script>alert(1)</script>'),
    quote("../../../etc/passwd"),
    quote("٢٠٢٦-٠١-٠١"),  # Arabic-Indic digits
    quote("\u202e\ufeff"),
    "",
]

# A valid query each page starts from: the reports need both dates.
VALID = {
    "reports": {"date_from": "2026-01-01", "date_to": "2026-01-31", "period": "day"},
    "report_export": {"date_from": "2026-01-01", "date_to": "2026-01-31", "group": "period"},
    "report_export_xlsx": {"date_from": "2026-01-01", "date_to": "2026-01-31", "group": "period"},
}
CALL_FILTERS = ["store", "campaign", "state", "outcome", "date_from", "date_to", "q"]
ORDER_FILTERS = [
    *("q", "store", "status", "decision", "followup", "source", "delivery", "date_from", "date_to")
]
# URL name -> the GET parameters its view reads (plus a stray one every page must ignore).
PARAMETERS: dict[str, list[str]] = {
    "call_list": [*CALL_FILTERS, "before", "after"],
    "call_export": CALL_FILTERS,
    "call_export_xlsx": CALL_FILTERS,
    "followup_list": ["reason", "who", "after", "cb"],
    "order_batch": ["back"],
    "order_list": [*ORDER_FILTERS, "range", "before", "after"],
    "order_export": [*ORDER_FILTERS, "range"],
    "order_export_xlsx": [*ORDER_FILTERS, "range"],
    "campaign_list": ["page"],
    "campaign_launch": ["page"],
    "store_blocked_phones": ["phone"],
    "reports": ["store", "date_from", "date_to", "period"],
    "report_export": ["store", "date_from", "date_to", "period", "group"],
    "report_export_xlsx": ["store", "date_from", "date_to", "period", "group"],
}
GET_PAGES = [
    "overview",
    "call_list",
    "call_export",
    "call_export_xlsx",
    "call_detail",
    "call_row",
    "followup_list",
    "order_list",
    "order_export",
    "order_export_xlsx",
    "order_detail",
    "order_batch",
    "campaign_list",
    "campaign_new",
    "campaign_detail",
    "campaign_progress",
    "campaign_launch",
    "campaign_upload_rejected",
    "reports",
    "report_export",
    "report_export_xlsx",
    "settings",
    "store_edit",
    "store_blocked_phones",
    "user_new",
    "user_edit",
]


def test_the_sweep_covers_every_page_that_answers_get():
    named = {p.name for p in calls_urls.urlpatterns if isinstance(p, URLPattern)}
    # Actions are POST-only; the balances fragment asks the provider (its own tests cover it).
    post_only = {
        "call_again",
        "call_withdraw",
        "order_decide",
        "order_call_again",
        "order_phone",
        "order_delivery",
        "order_block",
        "order_unblock",
        "followup_claim",
        "followup_release",
        "followup_take_over",
        "followup_handled",
        "followup_callback",
        "followup_next",
        "order_bulk",
        "campaign_single_order",
        "campaign_upload",
        "campaign_pause",
        "campaign_resume",
        "store_new",
        "store_verify",
        "store_rules_preview",
        "store_block_phone",
        "store_unblock_phone",
        "store_delivery_sheet",
        "overview_balances",
        "store_delivery_sheet_status",  # a courier sheet's progress: its own tests cover it
    }
    assert named - post_only == set(GET_PAGES)


# The permission tests' objects and personas: a store, a campaign, a final call, each role.
world = test_permissions.world


def queries(name: str) -> list[str]:
    """Every query string of the sweep for page `name`: one hostile value in one parameter."""
    valid = VALID.get(name, {})
    parameters = PARAMETERS.get(name, [])
    result = []
    if "date_from" in parameters:  # both ends of the range at once (e.g. far in the future)
        rest = "&".join(f"{k}={quote(v)}" for k, v in valid.items() if not k.startswith("date_"))
        result += [f"{rest}&date_from={value}&date_to={value}" for value in HOSTILE]
    for parameter in [*parameters, "zz"]:
        rest = "&".join(f"{k}={quote(v)}" for k, v in valid.items() if k != parameter)
        arrays = [f"{parameter}[]=1&{parameter}[]=2", f"{parameter}=1&{parameter}=9999-12-31"]
        for hostile in [*(f"{parameter}={value}" for value in HOSTILE), *arrays]:
            result.append("&".join(part for part in (rest, hostile) if part))
    return result


# An .xlsx export is its CSV twin's view with another writer: its parameters are read by the
# same code, swept above for every role. Building a workbook per query is slow, so the twins are
# swept once, as a manager (who may export).
XLSX_TWINS = {"call_export_xlsx", "report_export_xlsx", "order_export_xlsx"}
# Pages whose reading of the query does not depend on the role: swept once, as the admin (the
# Orders list's role only adds its bulk-action bar; its exports read the same filters).
ONE_READER = {"order_list", "order_export"}
SWEEP = [
    (name, persona)
    for name in GET_PAGES
    for persona in ("admin", "agent", "manager")
    if (name not in XLSX_TWINS or persona == "manager")
    and (name not in ONE_READER or persona == "admin")
]


@pytest.mark.parametrize(("name", "persona"), SWEEP)
def test_no_hostile_get_parameter_makes_a_page_fail(world, persona, name):
    client = Client(raise_request_exception=False)
    client.force_login(world[persona])
    path = test_permissions.url_for(name, world)

    failures = []
    for query in queries(name):
        response = client.get(f"{path}?{query}")
        if response.status_code >= 500:
            failures.append(f"{response.status_code} {path}?{query[:120]}")
    assert not failures, "\n".join(failures)


def test_a_day_past_2099_is_a_form_error_on_the_calls_and_reports(client: Client, admin_user):
    client.force_login(admin_user)
    far = "date_from=9999-12-31&date_to=9999-12-31"
    message = "Choose a day between 2000-01-01 and 2099-12-31."

    calls = client.get(f"/calls/?{far}")
    assert calls.status_code == 200  # the list, unfiltered by the bad field, with its error
    assert message in calls.content.decode()
    for path in ("/calls/export.csv", "/reports/", "/reports/export.csv"):
        response = client.get(f"{path}?{far}")
        assert response.status_code == 400, path
        assert message in response.content.decode(), path


# --- A shop's hostile orders and the API's hostile fields -----------------------------------

shopify = test_webhooks.shopify
woocommerce = test_webhooks.woocommerce
NUL_REASON = "contains a control character (U+0000, NUL) at position"
SURROGATE_REASON = "contains half of a UTF-16 surrogate pair (U+D800) at position 1"
SHOPIFY_ADDRESS = {"phone": "0300 1234567", "name": "Ayesha Khan"}


def a_lone_surrogate(body: bytes) -> bytes:
    """`body` with its "LONE" replaced by the JSON escape of half a surrogate pair, which
    json.loads reads into a str that has no UTF-8 form."""
    return body.replace(b"LONE", b"\\ud800")


# (body, the field the reason names, the reason), each a signed orders/create.
HOSTILE_SHOPIFY_ORDERS = {
    "nul-in-customer-name": (
        shopify_order(shipping_address=SHOPIFY_ADDRESS | {"name": "Ayesha\x00Khan"}),
        "customer_name",
        NUL_REASON,
    ),
    "nul-in-order-name": (shopify_order(name="#10\x0001"), "order_id", NUL_REASON),
    "nul-in-phone": (
        shopify_order(shipping_address=SHOPIFY_ADDRESS | {"phone": "0300\x001234567"}),
        "phone",
        NUL_REASON,
    ),
    "nul-in-id": (shopify_order(id="8209\x0082"), "shop_order_id", NUL_REASON),
    "amount-1e30": (shopify_order(total_price=1e30), "amount", "amount 1E+30 is more than"),
    "amount-1e30-as-text": (shopify_order(total_price="1e30"), "amount", "is more than"),
    "amount-rounding-past-the-column": (
        shopify_order(total_price="9999999999.999"),
        "amount",
        "amount 9999999999.999 is more than 9,999,999,999.99",
    ),
    "lone-surrogate": (
        a_lone_surrogate(shopify_order(shipping_address=SHOPIFY_ADDRESS | {"name": "LONE"})),
        "customer_name",
        SURROGATE_REASON,
    ),
}
HOSTILE_WOO_ORDERS = {
    "nul-in-customer-name": (
        woo_order(billing={"first_name": "Bilal\x00", "phone": "03011234568"}),
        "customer_name",
        NUL_REASON,
    ),
    "nul-in-number": (woo_order(number="10\x0001"), "order_id", NUL_REASON),
    "nul-in-phone": (woo_order(billing={"phone": "0301\x001234568"}), "phone", NUL_REASON),
    "amount-1e30": (woo_order(total="1e30"), "amount", "is more than"),
    "lone-surrogate": (a_lone_surrogate(woo_order(number="LONE")), "order_id", SURROGATE_REASON),
}


DELIVERY = {"shopify": "X-Shopify-Webhook-Id", "woocommerce": "X-WC-Webhook-Delivery-ID"}


def post_hook(client: Client, kind: str, store, body: bytes, **headers: str):  # type: ignore[no-untyped-def]
    if kind == "shopify":
        signature = {"X-Shopify-Hmac-Sha256": signed(body, SHOPIFY_SECRET)}
        names = {"X-Shopify-Topic": "orders/create", "X-Shopify-Webhook-Id": "d-1"}
    else:
        signature = {"X-WC-Webhook-Signature": signed(body, WOO_SECRET)}
        names = {"X-WC-Webhook-Topic": "order.created", "X-WC-Webhook-Delivery-ID": "d-1"}
    return client.post(
        f"/hooks/{kind}/{store.pk}/",
        data=body,
        content_type="application/json",
        headers=names | signature | headers,
    )


@pytest.mark.parametrize(
    ("kind", "case"),
    [("shopify", case) for case in HOSTILE_SHOPIFY_ORDERS]
    + [("woocommerce", case) for case in HOSTILE_WOO_ORDERS],
)
def test_a_shops_hostile_order_is_kept_as_rejected_with_its_reason_and_answered_200(
    store, shopify, woocommerce, kind, case
):
    body, field, reason = (HOSTILE_SHOPIFY_ORDERS if kind == "shopify" else HOSTILE_WOO_ORDERS)[
        case
    ]
    client = Client(raise_request_exception=False)

    response = post_hook(client, kind, store, body)

    assert response.status_code == 200, response.content
    assert taken_in(response.json())[0] == "rejected"
    order = Order.objects.get()
    assert order.status == Order.Status.REJECTED and order.source == kind
    assert order.rejected_reason.startswith(field) and reason in order.rejected_reason
    assert not Call.objects.exists()
    assert ReceivedWebhook.objects.get().result.endswith(order.rejected_reason)
    if field == "amount":  # past the column: kept as 0, the shop's figure in the reason
        assert order.amount == 0
    else:  # refused characters kept as U+FFFD: the order is recognisable on its page
        assert "\ufffd" in order.order_id + order.customer_name + order.phone + order.shop_ref


def test_a_body_nested_100000_deep_is_refused_clearly_and_its_delivery_recorded(store, shopify):
    body = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    client = Client(raise_request_exception=False)

    first = post_hook(client, "shopify", store, body)
    again = post_hook(client, "shopify", store, body)

    assert first.status_code == 400
    assert first.json() == {
        "result": "refused",
        "message": "the body's JSON is nested too deeply to read",
    }
    recorded = ReceivedWebhook.objects.get()
    assert (recorded.outcome, recorded.result) == (
        "unreadable",
        "the body's JSON is nested too deeply to read",
    )
    assert recorded.processed_at is not None and not recorded.body  # nothing left to take in
    assert again.status_code == 200 and again.json()["result"] == "duplicate"  # no retry loop
    assert not Order.objects.exists()


@pytest.fixture
def api_token(store) -> str:
    return ApiToken.issue(store, "website")[1]


API_ORDER = {"order_id": "KK-1001", "phone": "0300 1234567", "amount": "1500.00"}


@pytest.mark.parametrize(
    "field", ["order_id", "customer_name", "campaign", "phone", "text3", "text4", "text5"]
)
def test_an_api_order_with_a_nul_in_a_field_is_400_naming_the_field(client, api_token, field):
    response = client.post(
        "/api/v1/orders",
        data=API_ORDER | {field: "KK\x00-1"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {api_token}"},
    )

    assert response.status_code == 400
    assert response.json() == {
        "errors": {field: f"{NUL_REASON} 3; a value may hold text, tabs and line breaks only"}
    }
    assert not Order.objects.exists()


def test_an_api_order_with_a_lone_surrogate_is_400_naming_the_field(client, api_token):
    body = a_lone_surrogate(json.dumps(API_ORDER | {"customer_name": "LONE"}).encode())
    response = client.post(
        "/api/v1/orders",
        data=body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {api_token}"},
    )

    assert response.status_code == 400 and list(response.json()["errors"]) == ["customer_name"]
    assert not Order.objects.exists()


def test_getting_an_order_id_with_a_nul_is_400_naming_the_order_id(client, api_token):
    response = client.get(
        "/api/v1/orders/KK-1001%00", headers={"Authorization": f"Bearer {api_token}"}
    )

    assert response.status_code == 400
    assert NUL_REASON in response.json()["errors"]["order_id"]


def test_a_test_order_to_a_phone_with_a_nul_is_a_form_error_and_sends_nothing(
    client, store, shopify, admin_user
):
    client.force_login(admin_user)
    integrations = f"/settings/stores/{store.pk}/integrations/"

    sent = client.post(
        f"{integrations}test-order/", {"kind": "shopify", "phone": "0300\x001234567"}, follow=True
    )

    assert sent.status_code == 200
    assert "The mobile number holds a character no number has (U+0000 at position 5)" in (
        text_of(sent)
    )
    assert not Order.objects.exists() and not ReceivedWebhook.objects.exists()


def test_no_hostile_value_in_an_api_field_or_the_orders_path_makes_the_api_fail(api_token):
    client = Client(raise_request_exception=False)
    headers = {"Authorization": f"Bearer {api_token}"}
    # The sweep's values as the text they encode; bytes that are not UTF-8 become lone
    # surrogates (surrogateescape), which JSON carries as \udcXX escapes.
    values = [unquote_to_bytes(value).decode("utf-8", "surrogateescape") for value in HOSTILE]
    fields = ["order_id", "phone", "amount", "customer_name", "campaign", "voice_id", "text3"]

    failures = []
    for value, path_value in zip(values, HOSTILE, strict=True):
        got = client.get(f"/api/v1/orders/{path_value or 'x'}", headers=headers)
        if got.status_code >= 500:
            failures.append(f"{got.status_code} GET {path_value[:60]}")
        for field in fields:
            body = json.dumps(API_ORDER | {"order_id": f"KK-{field}", field: value}).encode()
            sent = client.post(
                "/api/v1/orders", data=body, content_type="application/json", headers=headers
            )
            if sent.status_code >= 500:
                failures.append(f"{sent.status_code} POST {field}={value[:60]!r}")
    assert not failures, "\n".join(failures)


def test_no_hostile_value_in_a_shops_order_makes_its_webhook_fail(store, shopify, woocommerce):
    client = Client(raise_request_exception=False)
    values = [unquote_to_bytes(value).decode("utf-8", "surrogateescape") for value in HOSTILE]
    orders = {
        "shopify": lambda value: [
            shopify_order(name=value),
            shopify_order(id=value),
            shopify_order(total_price=value),
            shopify_order(shipping_address={"phone": value, "name": value}),
            shopify_order(payment_gateway_names=[value]),
        ],
        "woocommerce": lambda value: [
            woo_order(number=value),
            woo_order(id=value),
            woo_order(total=value),
            woo_order(billing={"phone": value, "first_name": value}),
            woo_order(payment_method=value),
        ],
    }

    failures, sent = [], 0
    for kind, variants in orders.items():
        for value in values:
            for n, body in enumerate(variants(value)):
                sent += 1  # a delivery id each, so none is answered as a duplicate
                answer = post_hook(client, kind, store, body, **{DELIVERY[kind]: f"d-{sent}"})
                if answer.status_code >= 500:
                    failures.append(f"{answer.status_code} {kind} variant {n}: {value[:60]!r}")
    assert not failures, "\n".join(failures)
