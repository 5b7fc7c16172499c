"""connect_shop and create_api_token: secrets from the environment, stored encrypted, printed
once where robodash makes them, never echoed otherwise."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection as db

from shops.forms import ShopifyForm
from shops.models import ApiToken, ShopConnection

pytestmark = pytest.mark.django_db

SHOPIFY_TOKEN = "shpat_0123456789abcdef0123456789"
HOOK_SECRET = "whsec-shopify-7c6b5a4d3e2f"


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def every_text_column() -> str:
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT secrets_encrypted, shop_domain, admin_api_url FROM shops_shopconnection"
        )
        return " ".join(str(v) for row in cursor.fetchall() for v in row)


def test_connect_shopify_stores_the_secrets_encrypted_and_prints_the_webhook_url(
    store, monkeypatch, settings
):
    settings.ROBODASH_PUBLIC_URL = "https://calls.example.pk"
    monkeypatch.setenv("SHOPIFY_ACCESS_TOKEN", SHOPIFY_TOKEN)
    monkeypatch.setenv("SHOPIFY_WEBHOOK_SECRET", HOOK_SECRET)

    out = run("connect_shop", store.name, "shopify", "--shop-domain", "kk.myshopify.com")

    connection = ShopConnection.objects.get(store=store, kind="shopify")
    assert connection.secret("access_token") == SHOPIFY_TOKEN
    assert connection.secret("webhook_secret") == HOOK_SECRET
    assert connection.shopify_admin_api_url() == (
        "https://kk.myshopify.com/admin/api/2025-07/graphql.json"
    )
    assert f"https://calls.example.pk/hooks/shopify/{store.pk}/" in out
    assert SHOPIFY_TOKEN not in out + every_text_column()
    assert HOOK_SECRET not in out + every_text_column()


def test_connecting_again_replaces_the_settings_and_keeps_one_connection(store, monkeypatch):
    monkeypatch.setenv("SHOPIFY_ACCESS_TOKEN", SHOPIFY_TOKEN)
    monkeypatch.setenv("SHOPIFY_WEBHOOK_SECRET", HOOK_SECRET)
    run("connect_shop", store.name, "shopify", "--shop-domain", "kk.myshopify.com")
    monkeypatch.setenv("SHOPIFY_ACCESS_TOKEN", "shpat_rotated_token_value")

    run(
        "connect_shop", store.name, "shopify", "--shop-domain", "kk.myshopify.com",
        "--admin-api-url", "http://127.0.0.1:8002/admin/api/2025-07/graphql.json",
    )  # fmt: skip

    [connection] = ShopConnection.objects.filter(store=store)
    assert connection.secret("access_token") == "shpat_rotated_token_value"
    assert connection.shopify_admin_api_url().startswith("http://127.0.0.1:8002/")


def test_connect_woocommerce_needs_its_three_secrets_from_the_environment(store, monkeypatch):
    monkeypatch.setenv("WC_CONSUMER_KEY", "ck_x")
    with pytest.raises(CommandError) as missing:
        run("connect_shop", store.name, "woocommerce", "--site-url", "https://shop.example.pk")
    assert "set WC_CONSUMER_SECRET and WC_WEBHOOK_SECRET in the environment" in str(missing.value)
    assert not ShopConnection.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["shopify", "--shop-domain", "kk.example.com"], "x.myshopify.com domain"),
        (["woocommerce"], "--site-url is required"),
        (["woocommerce", "--site-url", "ftp://shop.pk"], "--site-url: Use an https:// address"),
        (["webhook"], "--url is required"),
    ],
)
def test_connect_shop_refuses_bad_options_clearly(store, monkeypatch, args, message):
    for name in ("SHOPIFY_ACCESS_TOKEN", "SHOPIFY_WEBHOOK_SECRET", "WC_CONSUMER_KEY"):
        monkeypatch.setenv(name, "x")
    monkeypatch.setenv("WC_CONSUMER_SECRET", "x")
    monkeypatch.setenv("WC_WEBHOOK_SECRET", "x")
    with pytest.raises(CommandError) as refused:
        run("connect_shop", store.name, *args)
    assert message in str(refused.value)
    assert not ShopConnection.objects.exists()


# Shop domains that are not a plain <name>.myshopify.com host: with any of them the Admin API
# token could be sent somewhere else (evil.example#.myshopify.com is https://evil.example/).
NOT_A_SHOP_DOMAIN = [
    "evil.example#.myshopify.com",
    "evil.example/.myshopify.com",
    "evil.example?.myshopify.com",
    "evil.example@kk.myshopify.com",
    "evil.example:443.myshopify.com",
    "kk.myshopify.com:8443",
    "kk.myshopify.com/admin",
    "kk.myshopify.com?x=1",
    "kk.myshopify.com#x",
    "kk.myshopify.com.evil.example",
    "evil.example.myshopify.com",
    "https://kk.myshopify.com",
    "kk .myshopify.com",
    "-kk.myshopify.com",
    ".myshopify.com",
    "myshopify.com",
    "kk.example.com",
    "",
]


def shopify_form(domain: str) -> ShopifyForm:
    """The Integrations page's Shopify form as submitted with `domain` and its defaults."""
    shown = ShopifyForm()
    data = {name: shown[name].value() for name in shown.fields}
    secrets = {"access_token": SHOPIFY_TOKEN, "webhook_secret": HOOK_SECRET}
    return ShopifyForm({**data, "shop_domain": domain, **secrets})


@pytest.mark.parametrize("domain", NOT_A_SHOP_DOMAIN)
def test_connect_shop_refuses_every_shop_domain_the_form_refuses(store, monkeypatch, domain):
    monkeypatch.setenv("SHOPIFY_ACCESS_TOKEN", SHOPIFY_TOKEN)
    monkeypatch.setenv("SHOPIFY_WEBHOOK_SECRET", HOOK_SECRET)
    form = shopify_form(domain)

    assert not form.is_valid()
    assert list(form.errors) == ["shop_domain"]
    with pytest.raises(CommandError) as refused:
        run("connect_shop", store.name, "shopify", f"--shop-domain={domain}")
    assert str(refused.value).startswith("--shop-domain: ")
    assert not ShopConnection.objects.exists()


@pytest.mark.parametrize("domain", ["kk.myshopify.com", "KK-Store.MyShopify.com "])
def test_the_form_and_connect_shop_accept_a_plain_shop_domain_alike(store, monkeypatch, domain):
    monkeypatch.setenv("SHOPIFY_ACCESS_TOKEN", SHOPIFY_TOKEN)
    monkeypatch.setenv("SHOPIFY_WEBHOOK_SECRET", HOOK_SECRET)
    form = shopify_form(domain)

    assert form.is_valid(), form.errors
    run("connect_shop", store.name, "shopify", "--shop-domain", domain)
    stored = ShopConnection.objects.get().shop_domain
    assert stored == form.cleaned_data["shop_domain"] == domain.strip().lower()


def test_connect_webhook_makes_a_signing_secret_and_prints_it_once(store):
    out = run("connect_shop", store.name, "webhook", "--url", "https://kk.example.pk/robodash")

    connection = ShopConnection.objects.get(kind="webhook")
    secret = connection.secret("signing_secret")
    assert secret.startswith("whsec_") and len(secret) > 30
    assert f"Signing secret (shown once; robodash signs each delivery with it): {secret}" in out


def test_an_unknown_store_is_named_in_the_error(db):
    with pytest.raises(CommandError, match="no store named 'Nowhere'"):
        run("create_api_token", "Nowhere")


def test_create_api_token_prints_it_once_and_keeps_only_a_digest(store):
    out = run("create_api_token", store.name, "--name", "website")

    token = out.split("keep it secret): ")[1].split()[0]
    assert token.startswith("rdk_") and len(token) > 40
    row = ApiToken.objects.get(store=store)
    assert row.name == "website" and token not in row.token_hash
    assert ApiToken.find(token) == row
    assert ApiToken.find(token + "x") is None
    row.revoked_at = row.created_at
    row.save()
    assert ApiToken.find(token) is None


def test_without_a_public_url_the_commands_print_the_path_and_say_what_goes_in_front(
    store, monkeypatch, settings
):
    settings.ROBODASH_PUBLIC_URL = ""
    monkeypatch.setenv("SHOPIFY_ACCESS_TOKEN", SHOPIFY_TOKEN)
    monkeypatch.setenv("SHOPIFY_WEBHOOK_SECRET", HOOK_SECRET)

    connected = run("connect_shop", store.name, "shopify", "--shop-domain", "kk.myshopify.com")
    issued = run("create_api_token", store.name, "--name", "website")

    assert f"Register this webhook URL in the shop: /hooks/shopify/{store.pk}/\n" in connected
    assert "Send orders to /api/v1/orders with" in issued
    for out in (connected, issued):
        assert "ROBODASH_PUBLIC_URL is not set" in out
        assert "127.0.0.1" not in out
