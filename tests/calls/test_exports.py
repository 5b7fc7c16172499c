"""The pages' exports: UTF-8 with the BOM Excel needs (Urdu names survive), amount and store on
every call, an .xlsx with the same rows as the CSV, no cell a spreadsheet would run, and each
order's parcel."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import openpyxl
import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from calls.exports import ORDER_EXPORT_COLUMNS, spreadsheet_safe
from calls.intake.rows import FORMULA_STARTS, OrderRow, formula_warning
from calls.models import Call, Campaign, Order, Store, User
from calls.transitions import record_delivery
from tests.support.orders import create_call

URDU_CAMPAIGN = "عید سیل"  # "Eid sale"
FORMULA = '=HYPERLINK("http://evil","click")'


@pytest.fixture
def exported(client: Client, manager_user: User, store: Store) -> Client:
    urdu = Campaign.objects.create(store=store, name=URDU_CAMPAIGN)
    for i, (order_id, amount) in enumerate(
        [("ORD-1", "2000.00"), (FORMULA, "1500.50"), ("-2+3", "99.00")]
    ):
        create_call(
            store=store,
            campaign=urdu,
            order_id=order_id,
            phone="923001234567",
            amount=Decimal(amount),
            voice_id=102,
            **(
                {"outcome": Call.Outcome.CONFIRMED, "state": Call.State.FINAL}
                | {"call_charges": Decimal("6.90"), "finalized_at": dt.datetime.now(dt.UTC)}
                if i == 0
                else {}
            ),
            created_at=dt.datetime(2026, 5, 1, 7, 30 + i, tzinfo=dt.UTC),
        )
    client.force_login(manager_user)
    return client


def csv_of(response) -> tuple[bytes, list[list[str]]]:
    body = b"".join(response.streaming_content)
    return body, list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def test_the_calls_csv_starts_with_the_bom_and_round_trips_urdu_with_amount_and_store(exported):
    response = exported.get(reverse("call_export"))
    body, rows = csv_of(response)

    assert body.startswith(b"\xef\xbb\xbf")
    assert "عید سیل".encode() in body
    header, *calls = rows
    by_order = {row[0]: dict(zip(header, row, strict=True)) for row in calls}
    assert by_order["ORD-1"]["campaign"] == URDU_CAMPAIGN
    assert by_order["ORD-1"]["store"] == "Karachi Kitchenware"
    assert by_order["ORD-1"]["amount"] == "2000.00"
    assert "'" + FORMULA in by_order  # defused
    assert "'-2+3" in by_order
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in calls for cell in row)


def test_the_calls_xlsx_has_the_csv_rows_and_runs_no_formula(exported):
    _, csv_rows = csv_of(exported.get(reverse("call_export")))

    response = exported.get(reverse("call_export_xlsx"))
    book = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content)))
    sheet = book.active
    assert sheet is not None
    cells = [list(row) for row in sheet.iter_rows()]

    assert response["Content-Type"] == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert 'filename="calls-' in response["Content-Disposition"]
    assert "no-store" in response["Cache-Control"]
    assert all(cell.data_type != "f" for row in cells for cell in row)  # never a formula
    assert len(cells) == len(csv_rows) == 4
    for xlsx_row, csv_row in zip(cells, csv_rows, strict=True):
        assert all(_same_cell(c.value, text) for c, text in zip(xlsx_row, csv_row, strict=True))
    amounts = {row[0].value: row[3].value for row in cells[1:]}
    assert amounts["ORD-1"] == 2000  # a number Excel can add up
    assert amounts[FORMULA] == 1500.5


def _same_cell(value: object, csv_text: str) -> bool:
    """An .xlsx cell holds what the CSV cell says: the same number, or the same text (the
    CSV's defusing apostrophe is not needed in a string cell, which is never run)."""
    if isinstance(value, float | int):
        return Decimal(str(value)) == Decimal(csv_text)
    if isinstance(value, dt.datetime):  # the store's wall clock: the CSV's moment, no offset
        return value == dt.datetime.fromisoformat(csv_text).replace(tzinfo=None)
    text = "" if value is None else str(value)
    return csv_text == ("'" + text if text.startswith(("=", "+", "-", "@")) else text)


def test_the_report_exports_carry_the_bom_and_an_xlsx_of_the_same_table(exported):
    query = {"date_from": "2026-05-01", "date_to": "2026-05-01", "group": "campaign"}

    report_csv = exported.get(reverse("report_export"), query)
    report_xlsx = exported.get(reverse("report_export_xlsx"), query)
    sheet = openpyxl.load_workbook(io.BytesIO(b"".join(report_xlsx.streaming_content))).active
    assert sheet is not None

    assert report_csv.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(report_csv.content.decode("utf-8-sig"))))
    xlsx_rows = list(sheet.iter_rows(values_only=True))
    assert [row[0] for row in xlsx_rows] == [row[0] for row in rows]
    assert URDU_CAMPAIGN in [row[0] for row in xlsx_rows]
    assert xlsx_rows[1][2] == int(rows[1][2])  # calls, as a number


def test_a_control_character_in_an_order_id_does_not_break_the_xlsx(exported, store):
    create_call(
        store=store,
        campaign=Campaign.objects.get(name=URDU_CAMPAIGN),
        order_id="BELL\x07-1",
        phone="923001234567",
        amount=Decimal("10.00"),
        voice_id=102,
    )

    response = exported.get(reverse("call_export_xlsx"))
    sheet = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    assert sheet is not None

    assert "BELL\ufffd-1" in [row[0] for row in sheet.iter_rows(values_only=True)]


@pytest.mark.parametrize("start", FORMULA_STARTS)
def test_the_exports_defuse_every_start_the_upload_preview_warns_of(start: str) -> None:
    cell = f'{start}HYPERLINK("http://evil.example")'
    order = OrderRow(
        row=2, phone="923001234567", amount=Decimal(1500), order_id=cell, store_name="S"
    )

    assert formula_warning(order).startswith(f"order_id starts with {start}")
    assert spreadsheet_safe(cell) == "'" + cell


@pytest.mark.parametrize("start", ["\t", "\r"])
def test_the_exports_also_defuse_a_leading_tab_or_carriage_return(start: str) -> None:
    assert spreadsheet_safe(f"{start}=1+1") == f"'{start}=1+1"
    assert spreadsheet_safe("plain") == "plain"


def test_the_calls_exports_write_phones_as_the_pages_do_and_moments_as_dates_in_the_xlsx(
    exported,
):
    _, rows = csv_of(exported.get(reverse("call_export")))
    response = exported.get(reverse("call_export_xlsx"))
    sheet = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    assert sheet is not None
    header, *cells = list(sheet.iter_rows(values_only=True))
    first = dict(zip(header, cells[-1], strict=True))  # ORD-1, the oldest

    assert {row[2] for row in rows[1:]} == {"0300 1234567"}
    assert first["phone"] == "0300 1234567"
    # 07:30 UTC is 12:30 in Karachi: the store's wall clock, a date Excel can sort and sum.
    assert first["created_at"] == dt.datetime(2026, 5, 1, 12, 30)
    assert isinstance(first["finalized_at"], dt.datetime)


def test_the_report_xlsx_by_day_has_each_day_as_a_date(exported):
    query = {"date_from": "2026-05-01", "date_to": "2026-05-02", "group": "period"}

    report_xlsx = exported.get(reverse("report_export_xlsx"), query)
    sheet = openpyxl.load_workbook(io.BytesIO(b"".join(report_xlsx.streaming_content))).active
    assert sheet is not None
    labels = [row[0] for row in sheet.iter_rows(values_only=True)]

    # openpyxl reads a date cell back as a datetime at midnight.
    assert labels == ["day", dt.datetime(2026, 5, 1), dt.datetime(2026, 5, 2), "Total"]
    assert "all-stores-20260501-20260502.xlsx" in report_xlsx["Content-Disposition"]


def test_the_orders_exports_say_where_each_parcel_is_and_since_when(exported, store):
    delivered_at = dt.datetime(2026, 5, 3, 9, 15, tzinfo=dt.UTC)  # 14:15 in Karachi
    ord_1 = Order.objects.get(order_id="ORD-1")
    record_delivery(ord_1, "shipped", via=Order.DeliveryVia.SHEET, at=delivered_at, tracking="=1+1")
    record_delivery(ord_1, "delivered", via=Order.DeliveryVia.SHOPIFY, at=delivered_at)
    returned = Order.objects.get(order_id="-2+3")
    record_delivery(returned, "returned", via=Order.DeliveryVia.API, tracking="LEO-42")

    _, rows = csv_of(exported.get(reverse("order_export")))
    response = exported.get(reverse("order_export_xlsx"))
    sheet = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    assert sheet is not None
    header, *cells = list(sheet.iter_rows(values_only=True))
    out = io.StringIO()
    call_command("export_orders", stdout=out)

    assert rows[0] == list(header) == ORDER_EXPORT_COLUMNS
    assert ORDER_EXPORT_COLUMNS[-5:-2] == ["delivery", "delivery_at", "tracking"]
    assert ORDER_EXPORT_COLUMNS[-2:] == ["verdict", "verdict_reasons"]
    in_csv = {row[0]: dict(zip(rows[0], row, strict=True)) for row in rows[1:]}
    in_xlsx = {row[0]: dict(zip(header, row, strict=True)) for row in cells}
    # The CSV: ISO 8601 in the store's zone, like its other times; a tracking number that looks
    # like a formula defused.
    assert in_csv["ORD-1"]["delivery"] == "delivered"
    assert in_csv["ORD-1"]["delivery_at"] == "2026-05-03T14:15:00+05:00"
    assert in_csv["ORD-1"]["tracking"] == "'=1+1"
    assert (in_csv["'-2+3"]["delivery"], in_csv["'-2+3"]["tracking"]) == ("returned", "LEO-42")
    not_shipped = in_csv["'" + FORMULA]
    assert (not_shipped["delivery"], not_shipped["delivery_at"], not_shipped["tracking"]) == (
        "",
        "",
        "",
    )
    # The .xlsx: a date cell on the store's wall clock; the tracking number text, never run.
    assert in_xlsx["ORD-1"]["delivery_at"] == dt.datetime(2026, 5, 3, 14, 15)
    assert in_xlsx["ORD-1"]["tracking"] == "=1+1"
    assert in_xlsx[FORMULA]["delivery_at"] is None
    # export_orders writes the same columns.
    command_rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert command_rows[0] == ORDER_EXPORT_COLUMNS
    assert {row[0]: row[ORDER_EXPORT_COLUMNS.index("delivery")] for row in command_rows[1:]} == {
        "ORD-1": "delivered",
        "'" + FORMULA: "",
        "'-2+3": "returned",
    }


def test_the_report_xlsx_has_every_csv_column_with_numbers_as_numbers_and_money_as_rupees(
    exported,
):
    query = {"date_from": "2026-05-01", "date_to": "2026-05-01", "group": "store"}

    header, *rows = read_report_csv(exported.get(reverse("report_export"), query))
    response = exported.get(reverse("report_export_xlsx"), query)
    sheet = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    assert sheet is not None
    cells = {cell.value: cell for cell in next(sheet.iter_rows(min_row=1, max_row=1))}
    total = dict(zip(header, next(sheet.iter_rows(min_row=3, max_row=3)), strict=True))

    assert list(cells) == header  # the same columns, named alike
    assert total["detail"].value is None and total["store"].value == "Total"
    assert rows[-1][header.index("charges")] == "6.90"
    for name in ("charges", "notice_charges", "returns_avoided", "net_saved"):
        assert total[name].number_format == '"Rs" #,##0.00', name
        assert isinstance(total[name].value, int | float), name
    assert total["net_saved"].value == -6.9  # nothing avoided yet, one call charged
    for name in ("calls", "shipped", "returned", "cancelled_unshipped"):
        assert isinstance(total[name].value, int), name
        assert total[name].number_format == "General", name


def read_report_csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
