"""The first sheet of an uploaded .xlsx, read only within bounds set by what the file expands to.

An .xlsx is a zip of XML parts, so its bytes say little about its cost: a 118 KB workbook took a
web worker to 1,870 MB, and one of 177 KB, all empty rows, took 87 s. The work is bounded before
and while reading, each cap with its own refusal (calls/intake/file_errors.py says them):

1. **The zip's declared sizes** (its central directory, read before openpyxl opens anything):
   every part together at most MAX_EXPANDED_BYTES, a part openpyxl parses whole (styles, shared
   strings, the workbook, relationships) at most MAX_HELD_PART_BYTES, and no part over
   RATIO_FLOOR_BYTES expanding more than MAX_RATIO times its compressed size (deflate of real
   sheets stays far below; a zip bomb is near 1,000). zipfile stops a part at its declared
   size, so the declaration cannot lie about more.
2. **What each sheet holds**, counted by a streaming pass of expat over its XML before openpyxl
   opens the workbook: rows up to the last row number (blank and missing rows count, as
   openpyxl yields them), cells as openpyxl builds them (each row up to its last cell), a
   column past XFD, a cell's text over what Excel allows. Every sheet, not only the first, and
   before openpyxl: its read-only load looks into each sheet for the declared dimension and,
   when there is none, parses the whole sheet keeping an empty element per row and cell (some
   20 MB per million cells, so at most about 60 MB under MAX_CELLS); and it builds a whole row
   before handing it over, so a row of millions of cells must be refused before openpyxl meets
   it. expat counts in constant memory.
3. **The first sheet's declared dimension** (`<dimension ref="A1:XFD1048576"/>`): more rows than
   MAX_ROWS or cells than MAX_CELLS is refused before a row is read (openpyxl would pad every
   row to it and yield every row up to it).

Then openpyxl's read-only mode reads the sheet, its declared dimension dropped (it would pad
every row to it). Why a counting pass of our own and not openpyxl alone: openpyxl has no limits
to set, and its parser holds a row whole.
"""

from __future__ import annotations

import datetime as dt
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import IO, Any, cast
from xml.parsers import expat

from calls.intake.file_errors import ImportFileError

MIB = 1024 * 1024
MAX_EXPANDED_BYTES = 256 * MIB  # every part together; a 200,000-row sheet is about 100 MB
MAX_HELD_PART_BYTES = 16 * MIB  # a part openpyxl parses whole (styles, shared strings, …)
MAX_RATIO = 100  # a part's expanded size over its compressed size
RATIO_FLOOR_BYTES = 1 * MIB  # smaller parts may compress as they like
MAX_ROWS = 250_000  # the sheet's rows, blank ones included (an upload's cap is 200,000 data rows)
MAX_CELLS = 3_000_000  # cells openpyxl builds: 200,000 rows of 15 columns
MAX_COLUMNS = 16_384  # XFD, a spreadsheet's last column
MAX_CELL_CHARS = 32_767  # what an Excel cell holds
SCAN_CHUNK_BYTES = 64 * 1024
WORKSHEETS = "xl/worksheets/"  # parts openpyxl streams in read-only mode
MANIFEST = "[Content_Types].xml"  # every Office document has it


def check_package(file: IO[bytes]) -> None:
    """Refuse `file` (a zip, rewound afterwards) by its list of parts, before anything
    decompresses it: ImportFileError if it is no Office document or its declared sizes cross a
    cap (see the module docstring)."""
    try:
        with zipfile.ZipFile(file) as package:
            parts = package.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError):
        raise ImportFileError("not_a_workbook") from None
    finally:
        file.seek(0)
    if not any(part.filename == MANIFEST for part in parts):
        raise ImportFileError("not_a_workbook")  # a zip, but no Office document
    total = 0
    for part in parts:
        total += part.file_size
        if total > MAX_EXPANDED_BYTES:
            raise ImportFileError("workbook_expands", limit=MAX_EXPANDED_BYTES)
        streamed = part.filename.startswith(WORKSHEETS)
        if not streamed and part.file_size > MAX_HELD_PART_BYTES:
            raise ImportFileError(
                "workbook_part",
                part=part.filename[:100],
                size=part.file_size,
                limit=MAX_HELD_PART_BYTES,
            )
        if part.file_size > RATIO_FLOOR_BYTES and part.file_size > MAX_RATIO * max(
            part.compress_size, 1
        ):
            raise ImportFileError(
                "workbook_ratio",
                part=part.filename[:100],
                ratio=part.file_size // max(part.compress_size, 1),
                limit=MAX_RATIO,
            )


def _column_number(reference: str) -> int:
    """The column of a cell reference ("AB12" -> 28); 0 if it names none."""
    number = 0
    for char in reference:
        if "A" <= char <= "Z":
            number = number * 26 + ord(char) - 64
        elif "a" <= char <= "z":
            number = number * 26 + ord(char) - 96
        else:
            break
    return number


class _SheetCount:
    """expat's handlers for one pass over a sheet's XML: rows and cells as openpyxl would
    build them, refused past the caps at the element that crosses one."""

    def __init__(self) -> None:
        self.rows = 0  # the last row number seen (openpyxl yields every row up to it)
        self.cells = 0
        self.row_cells = 0  # cells in the current row, in document order
        self.column = 0  # the current cell's column
        self.in_cell = False
        self.cell_chars = 0

    def start(self, name: str, attributes: dict[str, str]) -> None:
        local = name.rpartition(" ")[2]
        if local == "row":
            reference = attributes.get("r")
            self.rows = int(reference) if reference and reference.isdigit() else self.rows + 1
            if self.rows > MAX_ROWS:
                raise ImportFileError("sheet_rows", limit=MAX_ROWS)
            self.row_cells = self.column = 0
        elif local == "c":
            reference = attributes.get("r")
            self.column = _column_number(reference) if reference else self.column + 1
            if self.column > MAX_COLUMNS:
                raise ImportFileError("sheet_columns", row=self.rows)
            self.row_cells += 1
            self.in_cell, self.cell_chars = True, 0

    def end(self, name: str) -> None:
        local = name.rpartition(" ")[2]
        if local == "c":
            self.in_cell = False
        elif local == "row":
            # openpyxl builds each row up to its last cell's column.
            self.cells += max(self.row_cells, self.column)
            if self.cells > MAX_CELLS:
                raise ImportFileError("sheet_cells", limit=MAX_CELLS)

    def text(self, data: str) -> None:
        if self.in_cell:
            self.cell_chars += len(data)
            if self.cell_chars > MAX_CELL_CHARS:
                raise ImportFileError("cell_too_long", row=self.rows, limit=MAX_CELL_CHARS)


def _refuse_doctype(*_args: object) -> None:
    raise ImportFileError("not_a_workbook")  # no part of an .xlsx has a DTD


def count_sheet(stream: IO[bytes]) -> int:
    """Count the sheet XML in `stream` in constant memory: its rows (blank ones included),
    ImportFileError past a cap."""
    count = _SheetCount()
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.StartElementHandler = count.start
    parser.EndElementHandler = count.end
    parser.CharacterDataHandler = count.text
    parser.StartDoctypeDeclHandler = _refuse_doctype
    parser.buffer_text = True
    try:
        while chunk := stream.read(SCAN_CHUNK_BYTES):
            parser.Parse(chunk, False)
        parser.Parse(b"", True)
    except ImportFileError:
        raise
    except (expat.ExpatError, zipfile.BadZipFile, EOFError, ValueError):
        raise ImportFileError("not_a_workbook") from None
    return count.rows


def count_sheets(file: IO[bytes]) -> dict[str, int]:
    """Count every worksheet part of `file` (a checked zip, rewound afterwards): openpyxl's
    read-only load looks into each for its declared dimension, and through the whole sheet when
    it declares none. The rows of each part, by its name; ImportFileError past a cap."""
    rows: dict[str, int] = {}
    try:
        with zipfile.ZipFile(file) as package:
            for part in package.infolist():
                name = part.filename
                if name.startswith(WORKSHEETS) and name.endswith(".xml") and "/_rels/" not in name:
                    with package.open(part) as stream:
                        rows[name] = count_sheet(stream)
    finally:
        file.seek(0)
    return rows


def cell_text(value: object) -> str:
    """A workbook cell as the text a CSV would hold: 3001234567 not 3001234567.0."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(Decimal(repr(value)))
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return str(value)


@contextmanager
def first_sheet(
    file: IO[bytes], on_size: Callable[[int], None] | None = None
) -> Iterator[Iterator[tuple[object, ...]]]:
    """The values of each row of `file`'s first sheet from row 1, blank rows included (as
    tuples up to the row's last cell), once every check of the module docstring has passed;
    `on_size` is told the sheet's rows before the first is read. ImportFileError if the file
    is not a workbook or crosses a cap."""
    from openpyxl import load_workbook  # only an Excel upload pays for the import

    check_package(file)
    rows_of = count_sheets(file)
    try:
        book = load_workbook(cast(Any, file), read_only=True, data_only=True)
    except Exception:  # zipfile, XML and openpyxl errors alike: the file is not a workbook
        raise ImportFileError("not_a_workbook") from None
    try:
        sheet = book.worksheets[0] if book.worksheets else None
        if sheet is None:
            raise ImportFileError("empty_sheet")
        declared_rows, declared_columns = sheet.max_row or 0, sheet.max_column or 0
        if declared_rows > MAX_ROWS:
            raise ImportFileError("sheet_rows", limit=MAX_ROWS)
        if declared_rows * declared_columns > MAX_CELLS:
            raise ImportFileError("sheet_cells", limit=MAX_CELLS)
        # openpyxl keeps no public name for the part it streams the sheet from.
        rows = rows_of.get(str(getattr(sheet, "_worksheet_path", "")))
        if on_size is not None and rows is not None:
            on_size(rows)
        sheet.reset_dimensions()  # rows as they are, not padded to the declared dimension
        yield sheet.iter_rows(values_only=True)
    finally:
        book.close()
