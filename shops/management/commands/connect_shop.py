"""python manage.py connect_shop STORE shopify|woocommerce|webhook [options]

Secrets come from the environment, never the command line (where `ps` and the shell history
would keep them): SHOPIFY_ACCESS_TOKEN and SHOPIFY_WEBHOOK_SECRET; WC_CONSUMER_KEY,
WC_CONSUMER_SECRET and WC_WEBHOOK_SECRET. A webhook's signing secret is made here and printed
once. Connecting a kind the store has already connected replaces it. Prints the URL to register
in the shop.
"""

from __future__ import annotations

import os
import secrets
from typing import Any
from urllib.parse import urlsplit

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from calls.models import Store
from shops.models import ShopConnection
from shops.urls_public import webhook_url

SECRETS = {
    "shopify": {"access_token": "SHOPIFY_ACCESS_TOKEN", "webhook_secret": "SHOPIFY_WEBHOOK_SECRET"},
    "woocommerce": {
        "consumer_key": "WC_CONSUMER_KEY",
        "consumer_secret": "WC_CONSUMER_SECRET",
        "webhook_secret": "WC_WEBHOOK_SECRET",
    },
    "webhook": {},
}


def http_url(text: str, option: str) -> str:
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CommandError(f"{option} must be an http(s):// URL, not {text!r}")
    return text.strip()


class Command(BaseCommand):
    help = "Connect a store to its Shopify, WooCommerce or own site (secrets from the environment)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("store", help="the store's name, as in Settings")
        parser.add_argument("kind", choices=["shopify", "woocommerce", "webhook"])
        parser.add_argument("--shop-domain", help="Shopify: the shop's x.myshopify.com domain")
        parser.add_argument(
            "--admin-api-url",
            help="Shopify: the Admin GraphQL endpoint, if not https://DOMAIN/admin/api/…",
        )
        parser.add_argument("--site-url", help="WooCommerce: the shop's address, https://…")
        parser.add_argument("--url", help="webhook: where robodash posts the decisions")
        parser.add_argument(
            "--cod",
            action="append",
            metavar="NAME",
            help="a payment gateway (Shopify) or method id (WooCommerce) that is cash on "
            "delivery; repeat for more (default: Cash on Delivery (COD) / cod)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        kind = options["kind"]
        store = Store.objects.filter(name=options["store"]).first()
        if store is None:
            raise CommandError(f"no store named {options['store']!r}")
        values = self._secrets(kind)
        fields: dict[str, Any] = {"cod_gateways": options["cod"] or []}
        if kind == "shopify":
            domain = (options["shop_domain"] or "").strip().lower()
            if not domain.endswith(".myshopify.com") or "/" in domain:
                raise CommandError("--shop-domain must be the shop's x.myshopify.com domain")
            fields["shop_domain"] = domain
            if options["admin_api_url"]:
                fields["admin_api_url"] = http_url(options["admin_api_url"], "--admin-api-url")
        elif kind == "woocommerce":
            if not options["site_url"]:
                raise CommandError("--site-url is required for woocommerce")
            fields["site_url"] = http_url(options["site_url"], "--site-url")
        else:
            if not options["url"]:
                raise CommandError("--url is required for webhook")
            fields["webhook_url"] = http_url(options["url"], "--url")
            values = {"signing_secret": "whsec_" + secrets.token_urlsafe(24)}

        with transaction.atomic():
            connection = ShopConnection.objects.filter(store=store, kind=kind).first()
            connection = connection or ShopConnection(store=store, kind=kind)
            for name, value in fields.items():
                setattr(connection, name, value)
            connection.set_secrets(**values)
            connection.save()

        self.stdout.write(f"{store.name}: {connection.get_kind_display()} connected.")
        if kind == "webhook":
            self.stdout.write(
                f"Signing secret (shown once; robodash signs each delivery with it): "
                f"{values['signing_secret']}"
            )
        else:
            self.stdout.write(f"Register this webhook URL in the shop: {webhook_url(connection)}")

    def _secrets(self, kind: str) -> dict[str, str]:
        needed = SECRETS[kind]
        missing = [env for env in needed.values() if not os.environ.get(env, "").strip()]
        if missing:
            raise CommandError(
                f"set {' and '.join(missing)} in the environment (not on the command line), "
                f"e.g. read -rs {missing[0]} && export {missing[0]}"
            )
        return {name: os.environ[env].strip() for name, env in needed.items()}
