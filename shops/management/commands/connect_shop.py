"""python manage.py connect_shop STORE shopify|woocommerce|webhook [options]

Secrets come from the environment, never the command line (where `ps` and the shell history
would keep them): SHOPIFY_ACCESS_TOKEN and SHOPIFY_WEBHOOK_SECRET; WC_CONSUMER_KEY,
WC_CONSUMER_SECRET and WC_WEBHOOK_SECRET. A webhook's signing secret is made here and printed
once. Connecting a kind the store has already connected replaces it. Prints the URL to register
in the shop. The options fill the Integrations page's form (shops/forms.py), so the command
accepts exactly the connections the page does: the same shop domains, and only the addresses
robodash may send to (shops/outgoing.py), and the same WooCommerce status mapping: each
`--woo-status STATUS=STATE` (shipped, delivered, returned or ignore) is added to the
connection's, or replaces that status's line.
"""

from __future__ import annotations

import os
import secrets
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from calls.models import Store
from shops.forms import FORMS, ConnectionForm, delivery_statuses_text, parse_delivery_statuses
from shops.models import ShopConnection
from shops.urls_public import WEBHOOK_TOPICS, unset_note, webhook_url

SECRETS = {
    "shopify": {"access_token": "SHOPIFY_ACCESS_TOKEN", "webhook_secret": "SHOPIFY_WEBHOOK_SECRET"},
    "woocommerce": {
        "consumer_key": "WC_CONSUMER_KEY",
        "consumer_secret": "WC_CONSUMER_SECRET",
        "webhook_secret": "WC_WEBHOOK_SECRET",
    },
    "webhook": {},
}
OPTIONS = {
    "shop_domain": "--shop-domain",
    "admin_api_url": "--admin-api-url",
    "site_url": "--site-url",
    "webhook_url": "--url",
    "cod_gateways": "--cod",
    "delivery_statuses": "--woo-status",
}


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
        parser.add_argument(
            "--woo-status",
            action="append",
            metavar="STATUS=STATE",
            help="WooCommerce: what an order status says of the parcel, STATE one of shipped, "
            "delivered, returned or ignore, e.g. completed=shipped; repeat for more (default: "
            "completed=delivered, refunded=returned)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        kind = options["kind"]
        store = Store.objects.filter(name=options["store"]).first()
        if store is None:
            raise CommandError(f"no store named {options['store']!r}")
        given: dict[str, Any] = {"cod_gateways": ", ".join(options["cod"] or [])}
        if kind == "shopify":
            given["shop_domain"] = options["shop_domain"] or ""
            if options["admin_api_url"]:
                given["admin_api_url"] = options["admin_api_url"].strip()
        elif kind == "woocommerce":
            if not options["site_url"]:
                raise CommandError("--site-url is required for woocommerce")
            given["site_url"] = options["site_url"].strip()
        elif not options["url"]:
            raise CommandError("--url is required for webhook")
        else:
            given["webhook_url"] = options["url"].strip()
        if options["woo_status"] and kind != "woocommerce":
            raise CommandError("--woo-status is for woocommerce")
        try:
            woo_statuses = parse_delivery_statuses("\n".join(options["woo_status"] or []))
        except ValidationError as error:
            raise CommandError(f"--woo-status: {' '.join(error.messages)}") from None
        values = self._secrets(kind)

        with transaction.atomic():
            connection = ShopConnection.objects.filter(store=store, kind=kind).first()
            form_class = FORMS[kind]
            unchanged = form_class(connection=connection)
            data = {name: unchanged[name].value() for name in unchanged.fields}
            data.update({name: value for name, value in given.items() if name in data})
            if woo_statuses:
                current = parse_delivery_statuses(data["delivery_statuses"])
                data["delivery_statuses"] = delivery_statuses_text(current | woo_statuses)
            form = form_class({**data, **values}, connection=connection)
            if not form.is_valid():
                raise CommandError(self._refusal(kind, form))
            connection = form.save(store)
            if kind == "webhook":
                values = {"signing_secret": "whsec_" + secrets.token_urlsafe(24)}
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
            topics = ", ".join(WEBHOOK_TOPICS[ShopConnection.Kind(kind)])
            self.stdout.write(f"with one webhook for each of these topics: {topics}")
            if note := unset_note():
                self.stdout.write(note)

    def _refusal(self, kind: str, form: ConnectionForm) -> str:
        """The form's errors, each named by the option or variable that gave the value."""
        names = {**OPTIONS, **SECRETS[kind]}
        return "; ".join(
            f"{names.get(field, field)}: {' '.join(str(e) for e in errors)}"
            for field, errors in form.errors.items()
        )

    def _secrets(self, kind: str) -> dict[str, str]:
        needed = SECRETS[kind]
        missing = [env for env in needed.values() if not os.environ.get(env, "").strip()]
        if missing:
            raise CommandError(
                f"set {' and '.join(missing)} in the environment (not on the command line), "
                f"e.g. read -rs {missing[0]} && export {missing[0]}"
            )
        return {name: os.environ[env].strip() for name, env in needed.items()}
