"""python manage.py roll_up_days [--rebuild] [--limit N]

Writes the daily figures of every closed day not rolled up yet, as beat does every 5 minutes
(31 days a run): run it once after installing on a database that already has calls. After
changing the reporting zone (ROBODASH_DEFAULT_STORE_TIMEZONE), or to recompute everything,
`--rebuild` deletes every rollup first. Pages stay right meanwhile: days not rolled up are
counted live.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from calls import rollups, stats
from calls.models import DailyFigures, RolledUpDay


class Command(BaseCommand):
    help = "Roll up the figures of every closed day not rolled up yet (--rebuild: all again)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--rebuild", action="store_true", help="delete every rollup, then compute them again"
        )
        parser.add_argument("--limit", type=int, help="roll up at most this many days")

    def handle(self, *args: Any, **options: Any) -> None:
        limit = options["limit"]
        if limit is not None and limit < 1:
            raise CommandError(f"--limit must be 1 or more, not {limit}")
        started = time.perf_counter()
        if options["rebuild"]:
            with transaction.atomic():
                DailyFigures.objects.all().delete()
                deleted, _ = RolledUpDay.objects.all().delete()
            self.stdout.write(f"Deleted the rollups of {deleted} days.")
        written = rollups.roll_up_closed_days(limit=limit)
        zone = stats.reporting_zone()
        self.stdout.write(
            f"Rolled up {written} days in {time.perf_counter() - started:.1f} s "
            f"({zone.key} days, closed before {rollups.closed_before(zone):%Y-%m-%d})."
        )
