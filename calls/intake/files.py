"""Reading an uploaded file: its rows, each validated (calls/intake/rows.py), as a stream.

Header names are matched case-insensitively, trimmed, with spaces or dashes read as `_`
("Order ID" is `order_id`); other columns are ignored. A file is CSV (UTF-8 with or without the
BOM Excel writes) or an Excel .xlsx workbook (its first sheet, read within the bounds of
calls/intake/workbooks.py), told apart by its first bytes, not its name: an .xlsx renamed .csv is
read as the workbook it is, and an old .xls is refused with what to do instead.

Each row is validated on its own: a bad row is reported by its spreadsheet row number (the header
is row 1) with every reason, and the rest still import. A problem with the file as a whole (no
header, a required column missing, not UTF-8) is an ImportFileError: nothing of it is used.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any, cast

from django.core.files import File

from calls.intake.file_errors import ImportFileError
from calls.intake.rows import KNOWN_COLUMNS, REQUIRED_COLUMNS, OrderRow, RowError, validate_order

# The first bytes of a zip (an .xlsx is one) and of an OLE2 compound file (an old .xls).
ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
CsvSource = IO[bytes] | IO[str] | File
# A header row -> the columns a reader uses (its name -> index), or ImportFileError if the
# header lacks what the reader needs: orders' (_header_columns), a courier sheet's
# (calls/intake/deliveries.py).
ColumnsOf = Callable[[list[str]], dict[str, int]]
SheetRows = Iterator[tuple[int, list[str], dict[str, int], int]]


def _header_name(raw: str) -> str:
    return re.sub(r"[\s\-]+", "_", raw.strip().lstrip("\ufeff").strip().lower())


def _empty_params(required: str | None) -> dict[str, str]:
    """An empty file's ImportFileError params: the columns `required` names, when they are not
    the orders' (file_errors.REQUIRED, the sentence's default)."""
    return {} if required is None else {"required": required}


@contextmanager
def _text_lines(file: CsvSource) -> Iterator[IO[str]]:
    """`file` as text, decoded as UTF-8 (a BOM dropped) while it is read, never all at once."""
    if isinstance(file, io.TextIOBase):
        yield cast(IO[str], file)  # already text (a test, a file opened as text)
        return
    wrapper = io.TextIOWrapper(cast(Any, file), encoding="utf-8-sig", newline="")
    try:
        yield wrapper
    finally:
        # Hand the caller's file back open: closing the wrapper would close it too.
        wrapper.detach()


def _header_columns(header: list[str]) -> dict[str, int]:
    """Known column name -> its index; other columns are ignored."""
    columns: dict[str, int] = {}
    for index, raw in enumerate(header):
        name = _header_name(raw)
        if name not in KNOWN_COLUMNS:
            continue
        if name in columns:
            raise ImportFileError("column_twice", name=name)
        columns[name] = index
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise ImportFileError(
            "columns_missing",
            missing=missing,
            found=[_header_name(h) for h in header if _header_name(h)],
            semicolons=len(header) == 1 and ";" in header[0],
        )
    return columns


def _csv_rows(
    file: CsvSource, columns_of: ColumnsOf = _header_columns, required: str | None = None
) -> SheetRows:
    """(spreadsheet row number, cells, header columns, header width) per non-blank data row;
    the header read by `columns_of`, and an empty file said to need `required` columns."""
    row_number = 1
    with _text_lines(file) as text:
        reader = csv.reader(text)
        try:
            header = next(reader, None)
            if header is None or not any(cell.strip() for cell in header):
                raise ImportFileError("empty_file", **_empty_params(required))
            columns = columns_of(header)
            for row_number, cells in enumerate(reader, start=2):
                if any(cell.strip() for cell in cells):  # Excel leaves blank rows at the end
                    yield row_number, cells, columns, len(header)
        except UnicodeDecodeError:
            raise ImportFileError("not_utf8", row=row_number + 1) from None
        except csv.Error as exc:
            raise ImportFileError("bad_csv", row=row_number + 1, error=str(exc)) from None


def _sniff(file: CsvSource) -> bytes:
    """The first bytes of a binary `file`, which is then rewound (b"" for a text stream)."""
    if isinstance(file, io.TextIOBase):
        return b""
    head = file.read(8)
    file.seek(0)
    return head if isinstance(head, bytes) else b""


def _xlsx_rows(
    file: CsvSource,
    on_size: Callable[[int], None] | None = None,
    columns_of: ColumnsOf = _header_columns,
    required: str | None = None,
) -> SheetRows:
    """As _csv_rows, for the first sheet of an .xlsx, read within the bounds of
    calls/intake/workbooks.py (openpyxl's read-only mode parses the sheet as it is iterated)."""
    from calls.intake import workbooks

    with workbooks.first_sheet(cast(IO[bytes], file), on_size) as rows:
        header = [workbooks.cell_text(value) for value in next(rows, ())]
        while header and not header[-1].strip():
            header.pop()  # a sheet's width is its widest row: trailing empty header cells
        if not any(cell.strip() for cell in header):
            raise ImportFileError("empty_sheet", **_empty_params(required))
        columns = columns_of(header)
        width = len(header)
        for row_number, values in enumerate(rows, start=2):
            cells = [workbooks.cell_text(value) for value in values[:width]]
            if any(cell.strip() for cell in cells):
                # No quoting in a workbook, so no "wrong number of fields": pad short rows.
                yield row_number, cells + [""] * (width - len(cells)), columns, width


def is_workbook(file: CsvSource) -> bool:
    """Whether `file` is a zip, as an .xlsx is (told by its first bytes, not its name)."""
    return _sniff(file).startswith(ZIP_MAGIC)


def sheet_rows(
    file: CsvSource,
    columns_of: ColumnsOf = _header_columns,
    *,
    required: str | None = None,
    on_sheet_size: Callable[[int], None] | None = None,
) -> SheetRows:
    """The rows of a CSV or .xlsx, told apart by the file's first bytes, not its name: (its
    spreadsheet row number, its cells, the header's columns as `columns_of` reads them, the
    header's width) per non-blank data row. `required` names the columns an empty file lacks
    (default: the orders'); `on_sheet_size` is told a workbook's rows (blank ones included)
    before they are read. ImportFileError if the file as a whole is unusable."""
    head = _sniff(file)
    if head.startswith(OLE_MAGIC):
        raise ImportFileError("old_xls")
    if head.startswith(ZIP_MAGIC):
        return _xlsx_rows(file, on_sheet_size, columns_of, required)
    return _csv_rows(file, columns_of, required)


def _validate_cells(
    row: int, cells: list[str], columns: dict[str, int], width: int, zone: dt.tzinfo
) -> OrderRow | RowError:
    if len(cells) != width:
        return RowError(
            row,
            f"has {len(cells)} fields but the header has {width} (a comma inside a value, "
            'e.g. an amount like 1,500, must be in quotes: "1,500")',
        )
    values = {name: cells[index] for name, index in columns.items()}
    result = validate_order(values, row=row, zone=zone)
    if isinstance(result, dict):
        return RowError(row, "; ".join(result.values()))
    return result


def validated_rows(
    file: CsvSource,
    on_sheet_size: Callable[[int], None] | None = None,
    zone: dt.tzinfo = dt.UTC,
) -> Iterator[OrderRow | RowError]:
    """Each non-blank data row of `file` (CSV or .xlsx), validated: the one reading of a file
    that the upload page and import_calls share. ImportFileError if the file as a
    whole is unusable; `on_sheet_size` as for sheet_rows; a placed time without an offset is
    in `zone` (the store's)."""
    for row, cells, columns, width in sheet_rows(file, on_sheet_size=on_sheet_size):
        yield _validate_cells(row, cells, columns, width, zone)
