"""python manage.py export_calls [--campaign NAME] [--store NAME] > calls.csv

The same CSV as the calls page's export, oldest call first, streamed to stdout.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from calls.exports import write_calls_csv
from calls.management.scope import store_and_campaign
from calls.models import Call


class Command(BaseCommand):
    help = "Write every call (optionally of one campaign or store) as CSV to stdout."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--campaign", help="only this campaign's calls")
        parser.add_argument("--store", help="only this store's calls")

    def handle(self, *args: Any, **options: Any) -> None:
        store, campaign = store_and_campaign(options["store"], options["campaign"])
        calls = Call.objects.all()
        if store is not None:
            calls = calls.filter(store=store)
        if campaign is not None:
            calls = calls.filter(campaign=campaign)
        # call_created_idx serves this order.
        write_calls_csv(calls.order_by("created_at", "id"), self.stdout)
