"""python manage.py figures [--check] [--rebuild]

The pages' figures are counted by PostgreSQL triggers as the calls change
(calls/figures/counters.py). `--check` compares every stored figure with a direct count of the
calls, in one snapshot, and exits 1 listing the groups that differ. `--rebuild` counts every call
again in the reporting zone (`migrate` does it by itself after ROBODASH_DEFAULT_STORE_TIMEZONE
changed); writers of calls wait for it, pages keep working. With neither, prints which zone the
figures are counted in.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from calls.figures import counters, stats


class Command(BaseCommand):
    help = "Check the stored figures against the calls (--check) or count them again (--rebuild)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--check", action="store_true", help="compare the figures with a direct count"
        )
        parser.add_argument(
            "--rebuild", action="store_true", help="count every call again, in the reporting zone"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        zone = stats.reporting_zone()
        if options["rebuild"]:
            started = time.perf_counter()
            groups = counters.rebuild(zone)
            self.stdout.write(
                f"Counted every call and order again in {zone.key}: {groups} groups of a day, "
                f"campaign and voice id, in {time.perf_counter() - started:.1f} s."
            )
        counted = stats.counted_zone()
        if counted != zone.key:
            self.stdout.write(
                f"The figures are counted in {counted}, not {zone.key}: the pages split days "
                "at the wrong midnight until `migrate` (or `figures --rebuild`) counts them again."
            )
        else:
            self.stdout.write(f"The figures are counted in {zone.key}, as calls and orders change.")
        if options["check"]:
            found = counters.mismatches()
            if found:
                lines = [f"  {group['group']}: {group['differ']}" for group in found]
                raise CommandError(
                    "These figures differ from a direct count (stored, counted):\n"
                    + "\n".join(lines)
                    + "\nRun `python manage.py figures --rebuild` to count them again."
                )
            self.stdout.write("Every figure equals a direct count of the calls and orders.")
