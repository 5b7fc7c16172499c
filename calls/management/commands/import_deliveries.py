"""python manage.py import_deliveries FILE --store STORE

Applies a courier's sheet of parcels (a CSV or .xlsx from PostEx, Leopards, TCS, Trax, M&P, Call
Courier…: a column of order ids and one of statuses, any header wording) to the store's orders:
each row's delivery recorded as from a courier's sheet, dated now, by the rule of which update
wins (calls/intake/delivery_sheets.py, calls/transitions.py). Every row that cannot be used is
listed with its reason and changes nothing; a summary counts the rows of each kind. Running it
again on the same file changes nothing.

Exit status: 0 the sheet was read (whatever its rows said); 1 no such file or store, or a file
that cannot be read as a whole (nothing changed then).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from calls.intake.deliveries import describe_problem
from calls.intake.delivery_sheets import import_sheet, summary_lines
from calls.intake.file_errors import ImportFileError
from calls.models import Store

EXIT_NOTHING_DONE = 1


class Command(BaseCommand):
    help = "Record what became of the parcels of a courier's sheet (CSV or .xlsx)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="a CSV or .xlsx with an order id and a status column")
        parser.add_argument("--store", required=True, help="store name (see add_store)")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        store = Store.objects.filter(name=options["store"].strip()).first()
        if store is None:
            known = ", ".join(Store.objects.values_list("name", flat=True)[:20]) or "none yet"
            raise CommandError(
                f"no store named {options['store']!r} (stores: {known})",
                returncode=EXIT_NOTHING_DONE,
            )
        if not path.is_file():
            raise CommandError(f"{path}: no such file", returncode=EXIT_NOTHING_DONE)

        def show_progress(rows: int) -> None:
            self.stderr.write(f"… {rows:,} rows applied")

        try:
            with path.open("rb") as file:
                summary = import_sheet(file, store, progress=show_progress)
        except ImportFileError as exc:
            raise CommandError(f"{path}: {exc}", returncode=EXIT_NOTHING_DONE) from None
        except OSError as exc:
            raise CommandError(
                f"{path}: cannot be read ({exc.strerror or exc})", returncode=EXIT_NOTHING_DONE
            ) from None

        for problem in summary.problems:
            self.stdout.write(
                f"row {problem.row}: {describe_problem(problem.code, problem.params)}; "
                "nothing changed"
            )
        rows = f"{summary.rows:,} row{'' if summary.rows == 1 else 's'}"
        self.stdout.write(f"{path.name} for {store.name}: {rows}")
        for line in summary_lines(summary):
            self.stdout.write(f"  {line}")
