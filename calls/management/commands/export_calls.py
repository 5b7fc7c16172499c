"""python manage.py export_calls [--campaign NAME] [--store NAME] > calls.csv

The same CSV as the calls page's export, oldest call first, streamed to stdout.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from calls.exports import write_calls_csv
from calls.models import Call, Campaign, Store


class Command(BaseCommand):
    help = "Write every call (optionally of one campaign or store) as CSV to stdout."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--campaign", help="only this campaign's calls")
        parser.add_argument("--store", help="only this store's calls")

    def handle(self, *args: Any, **options: Any) -> None:
        calls = Call.objects.all()
        store = None
        if options["store"] is not None:
            store = Store.objects.filter(name=options["store"].strip()).first()
            if store is None:
                raise CommandError(f"no store named {options['store']!r}")
            calls = calls.filter(store=store)
        if options["campaign"] is not None:
            campaigns = Campaign.objects.filter(name=options["campaign"].strip())
            if store is not None:
                campaigns = campaigns.filter(store=store)
            found = list(campaigns.select_related("store")[:10])
            if not found:
                where = f" in store {store.name!r}" if store else ""
                raise CommandError(f"no campaign named {options['campaign']!r}{where}")
            if len(found) > 1:
                stores = ", ".join(c.store.name for c in found)
                raise CommandError(
                    f"campaign {options['campaign']!r} exists in several stores ({stores}): "
                    "add --store NAME"
                )
            calls = calls.filter(campaign=found[0])
        # call_created_idx serves this order.
        write_calls_csv(calls.order_by("created_at", "id"), self.stdout)
