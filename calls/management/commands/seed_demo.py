"""`python manage.py seed_demo`: the users, store and campaign of the `make run` demo.

Safe to run again: it creates what is missing and leaves the rest alone (the demo store's key
excepted, which follows var/demo-api-key so that it matches the simulator's account).
"""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from calls.intake.single import create_single_call
from calls.models import Call, Campaign, Store, User
from robodash.demo import (
    DEMO_RETRY_DELAYS,
    demo_admin_password,
    demo_api_key,
    demo_shopify_secrets,
)

DEMO_STORE = "Demo Store"
DEMO_CAMPAIGN = "Demo campaign"
DEMO_USERS = (
    ("admin", User.Role.ADMIN),
    ("agent", User.Role.AGENT),
    ("manager", User.Role.MANAGER),
)
# Valid Pakistani mobile numbers (923XXXXXXXXX) in a block no real customer is likely to own.
DEMO_ORDERS = (
    ("DEMO-1001", "923001234501", Decimal("1500.00")),
    ("DEMO-1002", "923001234502", Decimal("2450.00")),
    ("DEMO-1003", "923001234503", Decimal("899.50")),
    ("DEMO-1004", "923001234504", Decimal("3200.00")),
    ("DEMO-1005", "923001234505", Decimal("1250.00")),
    ("DEMO-1006", "923001234506", Decimal("5600.00")),
    ("DEMO-1007", "923001234507", Decimal("749.00")),
    ("DEMO-1008", "923001234508", Decimal("1999.00")),
)


class Command(BaseCommand):
    help = "Create the demo users, store and campaign for `make run` (safe to run again)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--users-only",
            action="store_true",
            help="only the users: the provider is not the local simulator, so no demo store",
        )

    def handle(self, *args: Any, users_only: bool = False, **options: Any) -> None:
        var_dir = Path(settings.VAR_DIR)
        password, new_password = demo_admin_password(var_dir)
        with transaction.atomic():
            users = {name: self._ensure_user(name, role, password) for name, role in DEMO_USERS}
            if not users_only:
                store = self._ensure_store(demo_api_key(var_dir))
                self._ensure_campaign(store, users["admin"])
                shopify_url = os.environ.get("ROBODASH_DEMO_SHOPIFY_URL", "")
                if shopify_url:
                    self._ensure_shopify(store, shopify_url, *demo_shopify_secrets(var_dir))
        if new_password:
            self.stdout.write(
                f"demo users admin, agent and manager: password {password} "
                f"(kept in {var_dir / 'demo-admin-password'})"
            )

    def _ensure_user(self, username: str, role: str, password: str) -> User:
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User.objects.create_user(username, password=password, role=role)
            self.stdout.write(f"created user {username} ({user.get_role_display()})")
        elif not user.check_password(password):
            # Someone set their own password: theirs wins over the demo's.
            self.stdout.write(
                f"user {username} already exists with another password; left as it is "
                f"(reset it with: python manage.py changepassword {username})"
            )
        return user

    def _ensure_store(self, api_key: str) -> Store:
        store = Store.objects.filter(name=DEMO_STORE).first()
        if store is None:
            store = Store(
                name=DEMO_STORE,
                provider_retries=3,
                retry_delays=list(DEMO_RETRY_DELAYS),
                # Round the clock, so the demo's calls go out whenever it runs.
                calling_start=dt.time(0, 0),
                calling_end=dt.time(23, 59),
            )
            store.api_key = api_key
            store.full_clean()
            store.save()
            self.stdout.write(f"created store {DEMO_STORE!r} on the local simulator")
        elif not self._has_key(store, api_key):
            # var/ was cleared but the database kept: follow the simulator's new account key.
            store.api_key = api_key
            store.save()
            self.stdout.write(f"store {DEMO_STORE!r}: API key updated to var/demo-api-key")
        return store

    @staticmethod
    def _has_key(store: Store, api_key: str) -> bool:
        try:
            return store.api_key == api_key
        except ImproperlyConfigured:  # encrypted under a key no longer configured
            return False

    def _ensure_shopify(self, store: Store, admin_api_url: str, token: str, secret: str) -> None:
        """The demo store connected to the Shopify stand-in (its port may change per run)."""
        from shops.models import ShopConnection

        connection = ShopConnection.objects.filter(store=store, kind="shopify").first()
        created = connection is None
        connection = connection or ShopConnection(store=store, kind="shopify")
        connection.shop_domain = "demo-store.myshopify.com"
        connection.admin_api_url = admin_api_url
        connection.set_secrets(access_token=token, webhook_secret=secret)
        connection.save()
        if created:
            self.stdout.write(
                "connected the demo store to the Shopify stand-in: Settings → Demo Store → "
                "Integrations sends it a test order"
            )

    def _ensure_campaign(self, store: Store, admin: User) -> None:
        campaign, created = Campaign.objects.get_or_create(
            store=store, name=DEMO_CAMPAIGN, defaults={"created_by": admin}
        )
        existing = set(
            Call.objects.filter(campaign=campaign, parent__isnull=True).values_list(
                "order_id", flat=True
            )
        )
        added = 0
        for order_id, phone, amount in DEMO_ORDERS:
            if order_id in existing:
                continue
            create_single_call(
                campaign,
                phone=phone,
                amount=amount,
                order_id=order_id,
                store_name=store.name,
                created_by=admin,
            )
            added += 1
        if created or added:
            self.stdout.write(f"campaign {DEMO_CAMPAIGN!r}: {added} calls queued")
