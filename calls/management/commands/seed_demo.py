"""`python manage.py seed_demo`: the users, store and campaigns of the `make run` demo.

Two campaigns: "Demo campaign", whose queued calls the worker places on the simulator, and "Demo
deliveries", a dozen orders already called and then shipped, delivered or returned, so that the
returns figures (the overview's sentence, the reports' returns and money) are not empty. Their
calls and parcels go through calls/transitions.py like any other (the provider's answer is
written as polling would have read it); the store gets a return cost for the money to show, and
a voice for a notice call when an order ships, so the two parcels still on their way each have
one, queued for the worker to place on the simulator (the others were first heard of delivered
or returned, from a courier's sheet: no notice for a parcel that has arrived).

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
from django.utils import timezone

from calls import transitions
from calls.intake.single import create_single_call
from calls.models import Call, Campaign, Order, Store, User
from calls.pipeline.outcomes import ANSWERED
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

DEMO_DELIVERIES = "Demo deliveries"
DEMO_RETURN_COST = Decimal("450.00")  # one parcel refused at the door: shipping both ways
DEMO_CALL_CHARGE = Decimal("5.50")  # the simulator's demo rate: one pulse, answered
DEMO_NOTICE_VOICE = 110  # the voice telling a customer their order has shipped
BY_HAND = "confirmed by hand"  # unreachable, then an agent confirmed it by phone
NOT_CALLED = "not called"  # withdrawn before its call was placed, shipped all the same
Delivery = Order.Delivery
Outcome = Call.Outcome
NO_ANSWER = 5  # the provider's status of a call nobody picked up (calls/pipeline/outcomes.py)
DEMO_KEYS: dict[str, int] = {Outcome.CONFIRMED: 1, Outcome.CANCELLED: 2}  # the key pressed
# Order id, phone, amount, how its call ended, what became of its parcel ("": not shipped).
DEMO_PARCELS = (
    ("DEMO-2001", "923001234511", Decimal("1800.00"), Outcome.CONFIRMED, Delivery.DELIVERED),
    ("DEMO-2002", "923001234512", Decimal("2200.00"), Outcome.CONFIRMED, Delivery.SHIPPED),
    ("DEMO-2003", "923001234513", Decimal("950.00"), Outcome.CONFIRMED, Delivery.DELIVERED),
    ("DEMO-2004", "923001234514", Decimal("3100.00"), Outcome.CONFIRMED, Delivery.RETURNED),
    ("DEMO-2005", "923001234515", Decimal("1450.00"), Outcome.CONFIRMED, Delivery.SHIPPED),
    ("DEMO-2006", "923001234516", Decimal("2750.00"), Outcome.CANCELLED, ""),
    ("DEMO-2007", "923001234517", Decimal("1299.00"), Outcome.CANCELLED, ""),
    ("DEMO-2008", "923001234518", Decimal("4200.00"), Outcome.UNREACHABLE, Delivery.RETURNED),
    ("DEMO-2009", "923001234519", Decimal("850.00"), Outcome.NO_INPUT, Delivery.DELIVERED),
    ("DEMO-2010", "923001234520", Decimal("1999.00"), BY_HAND, Delivery.DELIVERED),
    ("DEMO-2011", "923001234521", Decimal("3600.00"), NOT_CALLED, Delivery.RETURNED),
    ("DEMO-2012", "923001234522", Decimal("720.00"), NOT_CALLED, Delivery.DELIVERED),
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
                self._ensure_deliveries(store, users["admin"], users["agent"])
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

    def _ensure_deliveries(self, store: Store, admin: User, agent: User) -> None:
        """The "Demo deliveries" campaign, once: its orders called, decided, then shipped,
        delivered or returned as a courier's sheet would say."""
        campaign, created = Campaign.objects.get_or_create(
            store=store, name=DEMO_DELIVERIES, defaults={"created_by": admin}
        )
        if not created:
            return
        if not store.return_cost:
            Store.objects.filter(pk=store.pk).update(return_cost=DEMO_RETURN_COST)
        if store.notify_on_shipped is None:
            Store.objects.filter(pk=store.pk).update(notify_on_shipped=DEMO_NOTICE_VOICE)
        for order_id, phone, amount, ending, delivery in DEMO_PARCELS:
            order = create_single_call(
                campaign,
                phone=phone,
                amount=amount,
                order_id=order_id,
                store_name=store.name,
                created_by=admin,
            )
            call = order.calls.get()  # the demo store has no rules: every order is called
            if ending == NOT_CALLED:
                transitions.withdraw(call, admin)
            else:
                self._called(call, Outcome.UNREACHABLE if ending == BY_HAND else ending)
            if ending == BY_HAND:
                transitions.decide_by_hand(
                    Order.objects.get(pk=call.shop_order_id),
                    agent,
                    Order.Decision.CONFIRMED,
                    "Reached the customer on WhatsApp: confirmed.",
                )
            if delivery:  # a shipment queues its notice call (calls/notices.py)
                transitions.record_delivery(
                    call.shop_order_id,
                    delivery,
                    via=Order.DeliveryVia.SHEET,
                    tracking=f"LP{order_id[-4:]}77",
                )
        self.stdout.write(
            f"campaign {DEMO_DELIVERIES!r}: {len(DEMO_PARCELS)} orders called and shipped, "
            f"delivered or returned, with notice calls of the shipped ones; return cost "
            f"Rs {store.return_cost or DEMO_RETURN_COST}"
        )

    @staticmethod
    def _called(call: Call, outcome: str) -> None:
        """`call` placed and ended with `outcome`, as the worker and polling would leave it,
        without the simulator (this history is already over)."""
        now = timezone.now()
        transitions.start_sending(call, now)
        transitions.mark_sent(call, f"demo-{call.order_id}", now)
        answered = outcome != Outcome.UNREACHABLE
        call.call_status = ANSWERED if answered else NO_ANSWER
        call.dtmf = DEMO_KEYS.get(outcome)
        call.retry = 0 if answered else len(DEMO_RETRY_DELAYS)
        call.call_charges = DEMO_CALL_CHARGE if answered else Decimal("0.00")
        call.provider_updated_at = now
        transitions.finish(call, outcome, now)
