""".xlsx files written directly as their zip of XML parts: as Excel saves them (numbers as
numbers, texts in a shared-string table), and as an attacker would (a sheet of millions of empty
rows, a declared dimension of a million rows, a part that expands a thousand times). openpyxl
takes many seconds to write many rows, and cannot write the hostile ones at all."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable
from xml.sax.saxutils import escape

XLSX_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
XLSX_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
XLSX_PACKAGE = "http://schemas.openxmlformats.org/package/2006"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml"
SHEET_PART = "xl/worksheets/sheet1.xml"


def _skeleton(shared: str) -> dict[str, str]:
    relationship = '<Relationship Id="{}" Type="{}/{}" Target="{}"/>'
    return {
        "[Content_Types].xml": f'<Types xmlns="{XLSX_PACKAGE}/content-types">'
        '<Default Extension="rels" '
        'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/xl/workbook.xml" ContentType="{XLSX_TYPE}.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" '
        f'ContentType="{XLSX_TYPE}.worksheet+xml"/>'
        '<Override PartName="/xl/sharedStrings.xml" '
        f'ContentType="{XLSX_TYPE}.sharedStrings+xml"/></Types>',
        "_rels/.rels": f'<Relationships xmlns="{XLSX_PACKAGE}/relationships">'
        + relationship.format("rId1", XLSX_REL, "officeDocument", "xl/workbook.xml")
        + "</Relationships>",
        "xl/workbook.xml": f'<workbook xmlns="{XLSX_MAIN}" xmlns:r="{XLSX_REL}"><sheets>'
        '<sheet name="Orders" sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels": f'<Relationships xmlns="{XLSX_PACKAGE}/relationships">'
        + relationship.format("rId1", XLSX_REL, "worksheet", "worksheets/sheet1.xml")
        + relationship.format("rId2", XLSX_REL, "sharedStrings", "sharedStrings.xml")
        + "</Relationships>",
        "xl/sharedStrings.xml": f'<sst xmlns="{XLSX_MAIN}">{shared}</sst>',
    }


def package(
    sheet_data: Iterable[bytes],
    *,
    dimension: str = "",
    shared: str = "",
    extra_parts: dict[str, Iterable[bytes]] | None = None,
) -> bytes:
    """A one-sheet workbook whose `<sheetData>` is the chunks of `sheet_data`, streamed into the
    zip (so a sheet of hundreds of MB costs no memory to write)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zipped:
        for name, xml in _skeleton(shared).items():
            zipped.writestr(name, xml)
        with zipped.open(SHEET_PART, "w", force_zip64=True) as sheet:
            sheet.write(f'<worksheet xmlns="{XLSX_MAIN}">'.encode())
            if dimension:
                sheet.write(f'<dimension ref="{dimension}"/>'.encode())
            sheet.write(b"<sheetData>")
            for chunk in sheet_data:
                sheet.write(chunk)
            sheet.write(b"</sheetData></worksheet>")
        for name, chunks in (extra_parts or {}).items():
            with zipped.open(name, "w", force_zip64=True) as part:
                for chunk in chunks:
                    part.write(chunk)
    return out.getvalue()


def sheet_xlsx(rows: list[tuple[str | int, ...]]) -> bytes:
    """A one-sheet .xlsx of `rows` as Excel saves it."""
    strings: dict[str, int] = {}

    def cell(value: str | int) -> str:
        if isinstance(value, int):
            return f"<c><v>{value}</v></c>"
        return f'<c t="s"><v>{strings.setdefault(value, len(strings))}</v></c>'

    sheet = "".join(
        f'<row r="{n}">{"".join(cell(v) for v in row)}</row>' for n, row in enumerate(rows, start=1)
    )
    shared = "".join(f"<si><t>{escape(text)}</t></si>" for text in strings)
    return package([sheet.encode()], shared=shared)


HEADER_ROW = b'<row r="1"><c t="inlineStr"><is><t>phone</t></is></c><c t="inlineStr"><is><t>amount</t></is></c><c t="inlineStr"><is><t>order_id</t></is></c><c t="inlineStr"><is><t>store_name</t></is></c></row>'  # noqa: E501


def repeated(chunk: bytes, times: int, per_write: int = 10_000) -> Iterable[bytes]:
    """`chunk` `times` times, written a block at a time."""
    block = chunk * per_write
    for _ in range(times // per_write):
        yield block
    yield chunk * (times % per_write)
