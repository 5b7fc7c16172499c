"""python manage.py import_calls FILE.csv --campaign NAME --store NAME [--voice-id N]

Imports the orders of a CSV (or .xlsx) as queued calls, then launches the campaign if the
provider balance allows. The file takes the upload page's path (calls/intake/uploads.py
import_file: staged, repeats and known orders marked, launched by batches) in one transaction;
the launch rules are calls/launches.py's. Exit status: 0 imported (and launched); 1 nothing
valid to import, or no such file or store; 2 imported but held in draft (low balance, see the
message). An order id the store already has (from any campaign, file or the form) places no
call and is reported as "already known"; a file whose every order is known or repeated is not
an error (0): importing the same file twice, or a file overlapping yesterday's, is harmless.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from calls import launches, transitions
from calls.intake.file_errors import ImportFileError
from calls.intake.rows import max_length_of
from calls.intake.uploads import ImportReport, import_file
from calls.models import Campaign, Store
from calls.pipeline.balances import calls_count

EXIT_NOTHING_IMPORTED = 1
EXIT_HELD_IN_DRAFT = 2
DUPLICATES_SHOWN = 20  # a re-run of a big file would otherwise print every row again


def positive_int(text: str) -> int:
    if not text.strip().isdigit() or int(text) <= 0:
        raise ValueError
    return int(text)


class Command(BaseCommand):
    help = "Import orders from a CSV (phone,amount,order_id,store_name) as calls of a campaign."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="CSV with columns phone,amount,order_id,store_name")
        parser.add_argument("--campaign", required=True, help="campaign name (created if new)")
        parser.add_argument("--store", required=True, help="store name (see add_store)")
        parser.add_argument("--voice-id", help="the campaign's voice id (default: the store's)")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        campaign_name = options["campaign"].strip()
        voice_id = None
        if options["voice_id"] is not None:
            try:
                voice_id = positive_int(options["voice_id"])
            except ValueError:
                raise CommandError(
                    f"--voice-id must be a positive whole number, not {options['voice_id']!r}"
                ) from None
        if not campaign_name:
            raise CommandError("--campaign must not be empty")
        if len(campaign_name) > max_length_of(Campaign, "name"):
            raise CommandError(
                f"--campaign is longer than {max_length_of(Campaign, 'name')} characters"
            )
        store = Store.objects.filter(name=options["store"].strip()).first()
        if store is None:
            known = ", ".join(Store.objects.values_list("name", flat=True)[:20]) or "none yet"
            raise CommandError(
                f"no store named {options['store']!r} (stores: {known}); "
                "add one with: manage.py add_store NAME",
                returncode=EXIT_NOTHING_IMPORTED,
            )
        if not path.is_file():
            raise CommandError(f"{path}: no such file", returncode=EXIT_NOTHING_IMPORTED)

        def show_progress(rows: int) -> None:
            self.stderr.write(f"… {rows:,} rows read")

        try:
            with path.open("rb") as file, transaction.atomic():
                campaign, created = transitions.draft_campaign(
                    store, campaign_name, voice_id=voice_id
                )
                previous_status = campaign.status
                if voice_id is not None and campaign.voice_id != voice_id:
                    campaign.voice_id = voice_id
                    campaign.save(update_fields=["voice_id"])
                # Hold a running campaign in draft while its new calls go in: the dispatcher
                # must not start on them before the balance check below has said yes.
                if transitions.hold_in_draft(campaign.pk):
                    campaign.refresh_from_db(fields=["status"])
                report = import_file(
                    file,
                    campaign=campaign,
                    filename=path.name,
                    progress=show_progress,
                    listed=DUPLICATES_SHOWN,
                )
                if not report.imported:
                    # Nothing new: leave the campaign as it was (or not there at all).
                    transaction.set_rollback(True)
        except ImportFileError as exc:
            raise CommandError(f"{path}: {exc}", returncode=EXIT_NOTHING_IMPORTED) from None
        except OSError as exc:
            raise CommandError(
                f"{path}: cannot be read ({exc.strerror or exc})", returncode=EXIT_NOTHING_IMPORTED
            ) from None

        self._print_report(report, campaign, created)
        if report.imported == 0 and not report.skipped_duplicates and not report.known_count:
            raise CommandError(
                "nothing valid to import: fix the rows above and run the command again",
                returncode=EXIT_NOTHING_IMPORTED,
            )
        if report.imported == 0:
            self.stdout.write(
                f"{report.known_count:,} already known: no new order, no call placed; "
                "nothing changed."
            )
            return
        self._launch(campaign, previous_status)

    def _print_report(self, report: ImportReport, campaign: Campaign, created: bool) -> None:
        for error in report.rejected:
            self.stdout.write(str(error))
        listed: tuple[tuple[Sequence[object], int, str], ...] = (
            (report.known, report.known_count, "already known"),
            (report.duplicates, report.skipped_duplicates, "duplicates"),
        )
        for rows, count, what in listed:
            for row in rows:
                self.stdout.write(str(row))
            if count > len(rows):
                self.stdout.write(f"… and {count - len(rows):,} more {what}")
        rows = f"{report.total_rows:,} row{'' if report.total_rows == 1 else 's'}"
        self.stdout.write(
            f"Campaign {campaign.name!r} ({'created' if created else 'existing'}): "
            f"{rows} read, {report.imported:,} imported, {report.known_count:,} already known, "
            f"{report.skipped_duplicates:,} duplicates in this file, "
            f"{len(report.rejected):,} rejected."
        )

    def _launch(self, campaign: Campaign, previous_status: str) -> None:
        if previous_status == Campaign.Status.PAUSED:
            self.stdout.write(
                "The campaign is paused: the new calls wait until it is resumed from its page."
            )
            return
        # Held in draft above: every queued call of the campaign is launched now.
        waiting = launches.waiting_draft_calls(campaign)
        check = launches.check(campaign, 0)
        if not check.ok:
            raise CommandError(
                f"{check.message} The calls are imported and the campaign {campaign.name!r} is "
                "left in draft.",
                returncode=EXIT_HELD_IN_DRAFT,
            )
        with transaction.atomic():
            launches.start(campaign)
        self.stdout.write(check.message)
        self.stdout.write(
            self.style.SUCCESS(
                f"Campaign {campaign.name!r} is running: {calls_count(waiting)} queued."
            )
        )
