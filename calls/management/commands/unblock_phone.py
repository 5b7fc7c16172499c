"""python manage.py unblock_phone STORE PHONE

Take a phone off the store's block list (calls/block_list.py): its next orders are judged by the
store's other rules again. Orders it already placed stay held until a person decides them.
Exit 0: unblocked, or it was not blocked (said so); 1: no such store, or not a mobile number.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from calls.block_list import unblock_phone
from calls.formatting import national_phone
from calls.management.scope import store_and_campaign
from calls.phones import InvalidPhone, normalize_pk_mobile


class Command(BaseCommand):
    help = "Take a phone off a store's block list."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("store", help="the store's name")
        parser.add_argument("phone", help="the customer's mobile number, in any usual shape")

    def handle(self, *args: Any, **options: Any) -> None:
        store, _campaign = store_and_campaign(options["store"], None)
        assert store is not None
        try:
            shown = national_phone(normalize_pk_mobile(options["phone"]))
            removed = unblock_phone(store, options["phone"])
        except InvalidPhone as refused:
            raise CommandError(f"not unblocked: {refused}") from None
        if removed:
            self.stdout.write(self.style.SUCCESS(f"{shown} unblocked at {store.name!r}."))
        else:
            self.stdout.write(f"{shown} was not blocked at {store.name!r}: nothing changed.")
