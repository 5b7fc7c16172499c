"""Settings → a store → Integrations: connecting shops from the browser, secrets write-only, a
signing secret and API tokens shown once, a test order through the shop's own path."""

from __future__ import annotations

import pytest

from calls.models import Call, Order
from shops.models import ApiToken, ShopConnection

pytestmark = pytest.mark.django_db
TOKEN, SECRET = "shpat_page_0123456789abcdef", "shpss_page_secret"


def page(store) -> str:
    return f"/settings/stores/{store.pk}/integrations/"


def connect_shopify(client, store, **changes):
    data = {
        "kind": "shopify",
        "shopify-shop_domain": "kk.myshopify.com",
        "shopify-access_token": TOKEN,
        "shopify-webhook_secret": SECRET,
        "shopify-cod_gateways": "Cash on Delivery (COD), COD",
        "shopify-tag_confirmed": "robocall-confirmed",
        "shopify-tag_cancelled": "robocall-cancelled",
        "shopify-tag_no_answer": "robocall-no-answer",
        "shopify-tag_skipped": "robocall-skipped",
    }
    return client.post(page(store), data | changes)


@pytest.mark.parametrize(
    ("persona", "status"), [("admin_user", 200), ("agent_user", 403), ("manager_user", 403)]
)
def test_only_an_admin_opens_integrations(client, store, request, persona, status):
    client.force_login(request.getfixturevalue(persona))
    assert client.get(page(store)).status_code == status
    assert client.post(f"{page(store)}tokens/", {"name": "x"}).status_code in (status, 200)
    if status == 403:
        assert not ApiToken.objects.exists()


def test_an_admin_connects_shopify_and_the_secrets_never_come_back(client, store, admin_user):
    client.force_login(admin_user)

    saved = connect_shopify(client, store)
    shown = client.get(page(store)).content.decode()

    assert saved.status_code == 302
    connection = ShopConnection.objects.get(store=store, kind="shopify")
    assert connection.secret("access_token") == TOKEN
    assert connection.cod_gateways == ["Cash on Delivery (COD)", "COD"]
    assert f"/hooks/shopify/{store.pk}/" in shown
    assert TOKEN not in shown and SECRET not in shown


def test_a_blank_secret_keeps_the_stored_one_and_a_first_connect_needs_them(
    client, store, admin_user
):
    client.force_login(admin_user)
    missing = connect_shopify(client, store, **{"shopify-access_token": ""})
    assert missing.status_code == 200 and "Needed to connect." in missing.content.decode()
    assert not ShopConnection.objects.exists()

    connect_shopify(client, store)
    connect_shopify(
        client, store, **{"shopify-access_token": "", "shopify-tag_confirmed": "cod-ok"}
    )

    connection = ShopConnection.objects.get()
    assert connection.secret("access_token") == TOKEN and connection.tags["confirmed"] == "cod-ok"


def test_a_webhook_connection_shows_its_signing_secret_once(client, store, admin_user):
    client.force_login(admin_user)

    first = client.post(page(store), {"kind": "webhook", "webhook-webhook_url": "https://kk.pk/h"})

    secret = ShopConnection.objects.get(kind="webhook").secret("signing_secret")
    assert first.status_code == 200 and secret in first.content.decode()
    assert secret not in client.get(page(store)).content.decode()


def test_an_api_token_is_shown_once_and_can_be_revoked(client, store, admin_user):
    client.force_login(admin_user)

    made = client.post(f"{page(store)}tokens/", {"name": "website"})

    row = ApiToken.objects.get()
    shown = made.content.decode()
    token = shown.split('id="shown-once-value" class="mono" readonly value="')[1].split('"')[0]
    assert ApiToken.find(token) == row
    assert token not in client.get(page(store)).content.decode()
    client.post(f"/settings/api-tokens/{row.pk}/revoke/")
    assert ApiToken.find(token) is None


@pytest.mark.django_db(transaction=True)
def test_a_test_order_goes_through_the_shops_own_path_and_is_queued(client, store, admin_user):
    client.force_login(admin_user)
    connect_shopify(client, store)

    sent = client.post(f"{page(store)}test-order/", {"kind": "shopify", "phone": "0300 1234567"})
    shown = client.get(page(store)).content.decode()

    assert sent.status_code == 302
    order = Order.objects.get()
    assert order.order_id.startswith("#TEST-") and order.source == "shopify"
    assert Call.objects.get().state == Call.State.QUEUED
    assert "orders/create: order #TEST-" in shown  # the last webhook received


@pytest.mark.django_db(transaction=True)
def test_orders_not_paid_cash_on_delivery_are_counted_on_the_page(client, store, admin_user):
    import json

    from shops.signatures import base64_hmac

    client.force_login(admin_user)
    connect_shopify(client, store)
    for n in range(2):
        body = json.dumps(
            {"id": n, "name": f"#C{n}", "total_price": "10", "payment_gateway_names": ["card"]}
        ).encode()
        client.post(
            f"/hooks/shopify/{store.pk}/",
            data=body,
            content_type="application/json",
            headers={
                "X-Shopify-Topic": "orders/create",
                "X-Shopify-Webhook-Id": f"c-{n}",
                "X-Shopify-Hmac-Sha256": base64_hmac(body, SECRET),
            },
        )

    assert "2 orders acknowledged and not called" in client.get(page(store)).content.decode()
    assert not Order.objects.exists()


def test_integrations_shows_the_addresses_on_the_host_and_scheme_the_admin_opened_it_at(
    client, store, admin_user, settings
):
    # Behind Caddy: the site's Host is passed on, and https comes as X-Forwarded-Proto.
    settings.ROBODASH_PUBLIC_URL = ""
    settings.ALLOWED_HOSTS = ["testserver", "robodash.kk.pk"]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    client.force_login(admin_user)
    connect_shopify(client, store)

    shown = client.get(
        page(store), HTTP_HOST="robodash.kk.pk", HTTP_X_FORWARDED_PROTO="https"
    ).content.decode()

    assert f"https://robodash.kk.pk/hooks/shopify/{store.pk}/" in shown
    assert "https://robodash.kk.pk/api/v1/orders" in shown
    assert "127.0.0.1:8000" not in shown


def test_integrations_shows_the_public_url_when_it_is_set(client, store, admin_user, settings):
    settings.ROBODASH_PUBLIC_URL = "https://calls.kk.pk/"
    client.force_login(admin_user)
    connect_shopify(client, store)

    shown = client.get(page(store)).content.decode()

    assert f"https://calls.kk.pk/hooks/shopify/{store.pk}/" in shown
    assert "https://calls.kk.pk/api/v1/orders" in shown
