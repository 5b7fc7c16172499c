"""What a merchant's file may look like: an .xlsx (also when it is named .csv), an old .xls (a
clear refusal), amounts written with the currency, cells a spreadsheet would run as formulas, and
the sample file the upload page offers.

A workbook is read by a worker: these tests run the worker's function (uploads.read_upload)
themselves, here; tests/calls/test_upload_workbooks.py has a real worker read one."""

from __future__ import annotations

import io
import zipfile
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from calls.intake import uploads
from calls.intake.files import validated_rows
from calls.intake.rows import OrderRow, RowError, parse_amount
from calls.models import Call, Campaign, Upload
from tests.support.pages import text_of

SAMPLE = Path(settings.BASE_DIR) / "static" / "samples" / "robodash-orders-sample.csv"
XLS_HEADER = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504


def workbook(rows: list[list[object]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Orders"
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


EXCEL_ORDERS = workbook(
    [
        ["Phone", "Amount", "Order ID", "Store Name", "Notes"],
        [3001234567, 2000, "X-1", "Karachi Kitchenware", "a number cell, as Excel keeps it"],
        ["0300 1234568", "Rs 2,000.50", "X-2", "Karachi Kitchenware", None],
        [None, None, None, None, None],  # a blank row is skipped, the numbering kept
        ["12345", 100, "X-3", "Karachi Kitchenware"],  # row 5: too short; a short row is padded
    ]
)


def post_file(client, store, content: bytes, filename: str):
    return client.post(
        reverse("campaign_upload"),
        {
            "store": store.pk,
            "campaign_name": "Excel orders",
            "voice_id": "",
            "file": SimpleUploadedFile(filename, content),
        },
    )


@pytest.mark.parametrize("filename", ["orders.xlsx", "orders.csv"])
def test_an_xlsx_is_read_by_its_bytes_whatever_its_name(admin, store, provider_url, filename):
    response = post_file(admin, store, EXCEL_ORDERS, filename)

    assert response.status_code == 302, text_of(response)
    assert Upload.objects.get().status == Upload.Status.READING
    uploads.read_upload(Upload.objects.get().pk)  # as the worker does
    staged = Upload.objects.get()
    assert (staged.valid_rows, staged.rejected_rows) == (2, 1)
    valid = list(staged.rows.filter(kind="valid").order_by("row"))
    assert [(r.row, r.phone, r.amount) for r in valid] == [
        (2, "923001234567", Decimal("2000.00")),
        (3, "923001234568", Decimal("2000.50")),
    ]
    assert staged.rows.get(kind="rejected").row == 5
    admin.post(reverse("campaign_launch", args=[staged.campaign_id]))
    assert sorted(Call.objects.values_list("order_id", "amount")) == [
        ("X-1", Decimal("2000.00")),
        ("X-2", Decimal("2000.50")),
    ]


def test_an_old_xls_gets_a_clear_refusal_not_not_utf8(admin, store, provider_url):
    response = post_file(admin, store, XLS_HEADER, "orders.csv")

    page = text_of(response)
    assert response.status_code == 200
    assert "This is an old Excel .xls file" in page
    assert "'Excel Workbook (.xlsx)' or 'CSV UTF-8 (Comma delimited)'" in page
    assert "not UTF-8" not in page
    assert not Campaign.objects.exists()


def test_a_zip_that_is_not_a_workbook_is_refused_clearly(admin, store, provider_url):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("orders.txt", "phone,amount\n")

    response = post_file(admin, store, archive.getvalue(), "orders.xlsx")

    assert "The file is a zip archive but not an Excel .xlsx workbook" in text_of(response)
    assert not Upload.objects.exists()


def test_an_xlsx_over_the_row_cap_is_refused_and_nothing_is_stored(store):
    campaign = Campaign.objects.create(store=store, name="Big")
    rows = [["phone", "amount", "order_id", "store_name"]]
    rows += [[f"0300{i:07d}", 100, f"B-{i}", "K"] for i in range(6)]

    with pytest.raises(uploads.TooManyRows):
        uploads.stage_upload(
            io.BytesIO(workbook(rows)), campaign=campaign, filename="big.xlsx", max_rows=5
        )
    assert not Upload.objects.exists()


@pytest.mark.parametrize(
    ("written", "amount"),
    [
        ("Rs 2,000", "2000.00"),
        ("Rs. 2,000.50", "2000.50"),
        ("rs2000", "2000.00"),
        ("PKR 2000", "2000.00"),
        ("₨ 1,500", "1500.00"),
        ("2,000/-", "2000.00"),
        ("2,000 Rs", "2000.00"),
    ],
)
def test_amounts_written_with_the_currency_are_read(written, amount):
    assert parse_amount(written) == Decimal(amount)


@pytest.mark.parametrize("written", ["Rs", "Rs -5", "PKR 2,00", "USD 20", "Rs 2,000 extra"])
def test_amounts_that_are_still_not_numbers_are_refused(written):
    with pytest.raises(ValueError):
        parse_amount(written)


def test_formula_like_cells_are_warned_on_the_preview_but_a_phones_plus_is_not(
    admin, store, provider_url
):
    content = (
        b"phone,amount,order_id,store_name,text3\n"
        b"+92 300 1234567,1500,A-1,Karachi Kitchenware,\n"  # row 2: a normal +92 phone
        b'03001234568,1500,"=HYPERLINK(""http://x"")",Karachi Kitchenware,\n'  # row 3
        b"03001234569,1500,A-3,@Kitchen,-10% off\n"  # row 4: store_name and text3
    )

    response = post_file(admin, store, content, "orders.csv")
    preview = text_of(admin.get(response["Location"]))

    assert "Cells that look like spreadsheet formulas (2)" in preview
    assert "order_id starts with =: a spreadsheet may run it as a formula" in preview
    assert "store_name, text3 start with -, @" in preview
    assert '<td class="num">2</td><td>A-1</td>' not in preview
    assert "Launch 3 calls" in preview  # a warning, not a rejection


def test_the_sample_csv_is_offered_explained_and_imports_cleanly(admin, store):
    page = text_of(admin.get(reverse("campaign_new")))

    assert "/static/samples/robodash-orders-sample.csv" in page
    assert "Download a sample CSV" in page
    assert "The shop name the voice reads out to the customer" in page  # store_name
    with SAMPLE.open("rb") as sample:
        results = list(validated_rows(sample))
    assert results and all(isinstance(r, OrderRow) for r in results), [
        r for r in results if isinstance(r, RowError)
    ]
    assert [r.amount for r in results if isinstance(r, OrderRow)] == [
        Decimal("2000.00"),
        Decimal("1500.50"),
        Decimal("850.00"),
    ]
