"""What can be wrong with an imported file as a whole, kept as a code and its values, and said in
words only when someone reads it.

A workbook is read in a worker (calls/intake/uploads.py) and the page that shows why it failed is
drawn later, for whoever looks, in their language: so an upload stores `ImportFileError.code` and
`.params`, and `describe` makes the sentence. `str(error)` is that sentence in the active
language, for the request that raised it and for import_calls.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

REQUIRED = "phone,amount,order_id,store_name"  # calls.intake.rows.REQUIRED_COLUMNS, as the header


def _mib(size: int) -> str:
    return f"{size / 1024 / 1024:,.0f}"


def _columns_missing(p: Mapping[str, Any]) -> str:
    missing = list(p["missing"])
    sentence = ngettext(
        "the header is missing the column %(missing)s. The first row must name the "
        "columns %(required)s (found: %(found)s); nothing was imported.",
        "the header is missing the columns %(missing)s. The first row must name the "
        "columns %(required)s (found: %(found)s); nothing was imported.",
        len(missing),
    ) % {
        "missing": ", ".join(missing),
        "required": REQUIRED,
        "found": ", ".join(p["found"]) or _("nothing"),
    }
    if p.get("semicolons"):
        sentence += " " + _(
            "The file seems to separate columns with ';': save it as CSV with commas."
        )
    return sentence


_SAVE_AS = "'Excel Workbook (.xlsx)' or 'CSV UTF-8 (Comma delimited)'"

# code -> the sentence for its params. The texts are those the catalogue already translates.
_SENTENCES: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "column_twice": lambda p: (
        _("the column %(name)s appears twice in the header") % {"name": repr(p["name"])}
    ),
    "columns_missing": _columns_missing,
    # A courier's sheet (calls/intake/deliveries.py): its order or status column not found.
    "parcel_columns_missing": lambda p: (
        (
            _(
                "no column of the header names the orders and none their parcels' status: a "
                "courier's sheet needs a column like Order ID, Order Ref or Reference and one "
                "like Status or Delivery Status (found: %(found)s); nothing was changed"
            )
            if len(p["missing"]) == 2
            else _(
                "no column of the header names the orders: a courier's sheet needs a column "
                "like Order ID, Order Ref or Reference (found: %(found)s); nothing was changed"
            )
            if "order" in p["missing"]
            else _(
                "no column of the header names the parcels' status: a courier's sheet needs a "
                "column like Status, Delivery Status or Shipment Status (found: %(found)s); "
                "nothing was changed"
            )
        )
        % {"found": ", ".join(p["found"]) or _("nothing")}
    ),
    "empty_file": lambda p: (
        _("the file is empty: the first row must name the columns %(required)s")
        % {"required": p.get("required", REQUIRED)}
    ),
    "not_utf8": lambda p: (
        _(
            "the file is not UTF-8 text (around row %(row)s): in Excel use "
            "'Save As' > 'CSV UTF-8 (Comma delimited)'; nothing was imported"
        )
        % {"row": p["row"]}
    ),
    "bad_csv": lambda p: (
        _("row %(row)s cannot be read as CSV (%(error)s); nothing was imported")
        % {"row": p["row"], "error": p["error"]}
    ),
    "old_xls": lambda p: _(
        "this is an old Excel .xls file, which robodash cannot read: in Excel use "
        "'Save As' > 'Excel Workbook (.xlsx)' or 'CSV UTF-8 (Comma delimited)'; "
        "nothing was imported"
    ),
    "not_a_workbook": lambda p: _(
        "the file is a zip archive but not an Excel .xlsx workbook: save it from Excel "
        "as 'Excel Workbook (.xlsx)' or 'CSV UTF-8 (Comma delimited)'; nothing was "
        "imported"
    ),
    "empty_sheet": lambda p: (
        _("the workbook's first sheet is empty: its first row must name the columns %(required)s")
        % {"required": p.get("required", REQUIRED)}
    ),
    "too_many_rows": lambda p: (
        _(
            "the file has more than %(rows)s rows, the most one upload may have: "
            "split it into files of up to %(rows)s rows; nothing was stored"
        )
        % {"rows": f"{p['rows']:,}"}
    ),
    # What a workbook expands to (calls/intake/workbooks.py): refused before it is read any further.
    "workbook_expands": lambda p: (
        _(
            "the workbook expands to more than %(limit)s MB when unzipped: save it as CSV "
            "or split it; nothing was imported"
        )
        % {"limit": _mib(p["limit"])}
    ),
    "workbook_part": lambda p: (
        _(
            "the workbook's part %(part)s expands to %(size)s MB, more than the %(limit)s MB "
            "it may have: save it as CSV or split it; nothing was imported"
        )
        % {"part": p["part"], "size": _mib(p["size"]), "limit": _mib(p["limit"])}
    ),
    "workbook_ratio": lambda p: (
        _(
            "the workbook's part %(part)s expands %(ratio)s times its compressed size, more "
            "than a spreadsheet does (at most %(limit)s times): it is refused as a zip bomb; "
            "save it as CSV; nothing was imported"
        )
        % {"part": p["part"], "ratio": f"{p['ratio']:,}", "limit": p["limit"]}
    ),
    "sheet_cells": lambda p: (
        _(
            "the sheet expands to more than %(limit)s cells (blank rows and columns count): "
            "save it as CSV or split it; nothing was imported"
        )
        % {"limit": f"{p['limit']:,}"}
    ),
    "sheet_rows": lambda p: (
        _(
            "the sheet has more than %(limit)s rows (blank rows count): save it as CSV or "
            "split it; nothing was imported"
        )
        % {"limit": f"{p['limit']:,}"}
    ),
    "sheet_columns": lambda p: (
        _(
            "row %(row)s of the sheet goes beyond column XFD, the last one a spreadsheet has: "
            "save it from Excel as %(formats)s; nothing was imported"
        )
        % {"row": f"{p['row']:,}", "formats": _SAVE_AS}
    ),
    "cell_too_long": lambda p: (
        _(
            "row %(row)s of the sheet has a cell of more than %(limit)s characters, more than "
            "a spreadsheet cell holds: save it as CSV; nothing was imported"
        )
        % {"row": f"{p['row']:,}", "limit": f"{p['limit']:,}"}
    ),
    # The worker's reading of a stored workbook (calls/intake/uploads.py).
    "read_too_slow": lambda p: _(
        "reading the workbook took too long: save it as CSV, which reads many times faster, "
        "or split it; nothing was imported"
    ),
    "read_lost": lambda p: _(
        "the workbook could not be read: the worker reading it stopped several times. Save "
        "it as CSV or split it, and upload it again; nothing was imported"
    ),
    "read_failed": lambda p: _(
        "the workbook could not be read (robodash's log says why): save it as CSV and "
        "upload it again; nothing was imported"
    ),
    # A courier's sheet applied by a worker (calls/intake/delivery_sheets.py), a batch at a time:
    # the batches before the stop are recorded, and a sheet applied again changes only the rest.
    "sheet_too_slow": lambda p: _(
        "applying the sheet took too long: the rows before the stop are recorded; split the "
        "rest into smaller files and upload them"
    ),
    "sheet_lost": lambda p: _(
        "the sheet could not be applied: the worker applying it stopped several times. The "
        "rows before the stop are recorded; upload it again to apply the rest"
    ),
    "sheet_failed": lambda p: _(
        "the sheet could not be applied (robodash's log says why): the rows before the stop "
        "are recorded; upload it again to apply the rest"
    ),
}


def describe(code: str, params: Mapping[str, Any]) -> str:
    """The sentence for a stored code and its params, in the active language."""
    sentence = _SENTENCES.get(code, _SENTENCES["read_failed"])
    return sentence(params)


class ImportFileError(ValueError):
    """The file as a whole cannot be imported (nothing was). `code` names what is wrong,
    `params` its values (JSON-safe, to be stored)."""

    def __init__(self, code: str, **params: Any) -> None:
        assert code in _SENTENCES, code
        super().__init__(code, params)
        self.code = code
        self.params = params

    def __str__(self) -> str:
        return describe(self.code, self.params)
