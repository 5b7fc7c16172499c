"""python manage.py block_phone STORE PHONE --reason TEXT

Put a phone on the store's block list (calls/block_list.py): its new orders are held for a
person, in the follow-up queue, instead of being called. The phone may be written in any shape
a Pakistani mobile is written in (0300-1234567, +92 300 1234567, ...). Blocking a blocked phone
again replaces its reason. Exit 0: blocked; 1: no such store, not a mobile number, or a reason
robodash does not take.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from calls.block_list import BlockRefused, block_phone
from calls.formatting import national_phone
from calls.management.scope import store_and_campaign
from calls.phones import InvalidPhone


class Command(BaseCommand):
    help = "Block a phone at a store: its new orders are held for a person, not called."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("store", help="the store's name")
        parser.add_argument("phone", help="the customer's mobile number, in any usual shape")
        parser.add_argument("--reason", required=True, help="why, shown with each order it holds")

    def handle(self, *args: Any, **options: Any) -> None:
        store, _campaign = store_and_campaign(options["store"], None)
        assert store is not None
        try:
            row, created = block_phone(store, options["phone"], options["reason"])
        except (InvalidPhone, BlockRefused) as refused:
            raise CommandError(f"not blocked: {refused}") from None
        shown = national_phone(row.phone)
        if created:
            self.stdout.write(self.style.SUCCESS(f"{shown} blocked at {store.name!r}."))
        else:
            self.stdout.write(f"{shown} was blocked at {store.name!r} already; reason updated.")
