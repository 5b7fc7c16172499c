"""python manage.py create_api_token STORE [--name NAME]: a token for POST /api/v1/orders.

The token is printed once and kept only as a digest: lose it and make another (revoke the old
one on the store's Integrations page).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from calls.models import Store
from shops.models import ApiToken
from shops.urls_public import orders_api_url, unset_note


class Command(BaseCommand):
    help = "Make an API token for a store's own site to send orders with (printed once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("store", help="the store's name, as in Settings")
        parser.add_argument("--name", default="", help="what the token is for, e.g. 'website'")

    def handle(self, *args: Any, **options: Any) -> None:
        store = Store.objects.filter(name=options["store"]).first()
        if store is None:
            raise CommandError(f"no store named {options['store']!r}")
        _, token = ApiToken.issue(store, options["name"])
        self.stdout.write(f"API token for {store.name} (shown once, keep it secret): {token}")
        self.stdout.write(
            f"Send orders to {orders_api_url()} with the header Authorization: Bearer <token>"
        )
        if note := unset_note():
            self.stdout.write(note)
