"""python manage.py export_orders [--store NAME] [--campaign NAME] > orders.csv

One row per order, oldest first, streamed to stdout: order_id, store, phone, status, decision,
decided_by (an agent's username, or "customer (key press)"), calls, last_outcome,
charges_total, source, created_at, decided_at, delivery (shipped, delivered, returned, or empty
while not known to have shipped), delivery_at, tracking. Times are ISO 8601 in the store's zone;
cells a spreadsheet would run as a formula are defused, as in export_calls. --campaign is the
campaign an order came in with.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from calls.exports import write_orders_csv
from calls.management.scope import store_and_campaign
from calls.models import Order


class Command(BaseCommand):
    help = "Write every order (optionally of one store or campaign) as CSV to stdout."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--store", help="only this store's orders")
        parser.add_argument("--campaign", help="only the orders that came in with this campaign")

    def handle(self, *args: Any, **options: Any) -> None:
        store, campaign = store_and_campaign(options["store"], options["campaign"])
        orders = Order.objects.all()
        if store is not None:
            orders = orders.filter(store=store)
        if campaign is not None:
            # order_campaign_created_idx serves this filter and order.
            orders = orders.filter(campaign=campaign)
        write_orders_csv(orders.order_by("created_at", "id"), self.stdout)
