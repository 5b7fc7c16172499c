"""manage.py import_deliveries: a courier's sheet (CSV or .xlsx, each courier's own headers and
status words) applied to a store's orders, every row it cannot use listed with its reason, a
summary by kind, and nothing changed by reading the same sheet twice."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from calls.figures import counters, stats
from calls.intake.deliveries import delivery_of_word, parcel_columns
from calls.intake.delivery_sheets import match_orders
from calls.intake.file_errors import ImportFileError
from calls.models import Campaign, Order, OrderEvent, Store
from calls.transitions import DeliveryVerdict, record_deliveries, record_delivery
from tests.support.workbooks import sheet_xlsx

pytestmark = pytest.mark.django_db
D = Order.Delivery
SAMPLE = Path(__file__).resolve().parents[2] / "static/samples/robodash-courier-sheet-sample.csv"


@pytest.fixture
def campaign(store: Store) -> Campaign:
    return Campaign.objects.create(store=store, name="Eid sale")


def orders(campaign: Campaign, *order_ids: str, **fields: object) -> list[Order]:
    return Order.objects.bulk_create(
        Order(
            store=campaign.store,
            campaign=campaign,
            order_id=order_id,
            phone="923001234567",
            amount=Decimal("1500.00"),
            voice_id=102,
            **fields,
        )
        for order_id in order_ids
    )


def figures_of(store: Store) -> stats.Figures:
    return stats.figures_total(store=store)


def run(path: Path, store: Store) -> str:
    out = io.StringIO()
    call_command("import_deliveries", str(path), store=store.name, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def write(tmp_path: Path, text: str, name: str = "parcels.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def delivery_of(store: Store, order_id: str) -> tuple[str, str, str]:
    order = Order.objects.get(store=store, order_id=order_id)
    return order.delivery, order.delivery_via, order.tracking


POSTEX = (
    "Tracking Number,Order Ref,Customer Name,COD Amount,Status\n"
    "PX-1,KK-1,Ayesha,2000,Delivered\n"
    "PX-2,KK-2,Bilal,1500,Returned to Shipper\n"
    "PX-3,KK-3,Sana,850,Out For Delivery\n"
    "PX-4,KK-404,Hina,900,Delivered\n"
    "PX-5,KK-4,Imran,990,Attempted\n"
    "PX-6,,Usman,700,Delivered\n"
    "PX-7,KK-5,Zara,650,\n"
)


def test_a_sheet_records_each_parcel_and_lists_every_row_it_cannot_use(tmp_path, store, campaign):
    orders(campaign, "KK-1", "KK-2", "KK-3", "KK-4", "KK-5")

    printed = run(write(tmp_path, POSTEX), store)

    assert delivery_of(store, "KK-1") == (D.DELIVERED, "sheet", "PX-1")
    assert delivery_of(store, "KK-2") == (D.RETURNED, "sheet", "PX-2")
    assert delivery_of(store, "KK-3") == (D.SHIPPED, "sheet", "PX-3")
    assert delivery_of(store, "KK-4") == ("", "", "")  # an unknown word changes nothing
    assert delivery_of(store, "KK-5") == ("", "", "")
    order = Order.objects.get(order_id="KK-1")
    assert order.delivery_at is not None
    assert abs(order.delivery_at - timezone.now()) < dt.timedelta(minutes=1)  # when received
    assert "row 5: no order KK-404 in this store; nothing changed" in printed
    assert "row 6: order KK-4: “Attempted” is not a parcel status robodash knows" in printed
    assert "row 7: no order id; nothing changed" in printed
    assert "row 8: order KK-5: no status; nothing changed" in printed
    assert "parcels.csv for Karachi Kitchenware: 7 rows" in printed
    assert "Recorded: 3" in printed
    assert "Not an order of this store: 1" in printed
    assert "Status word not known: 1" in printed
    assert "No status: 1" in printed and "No order id: 1" in printed


def test_a_sheet_read_twice_changes_nothing_the_second_time(tmp_path, store, campaign):
    orders(campaign, "KK-1", "KK-2", "KK-3", "KK-4", "KK-5")
    path = write(tmp_path, POSTEX)
    run(path, store)
    before = list(Order.objects.order_by("pk").values())
    events = OrderEvent.objects.count()

    printed = run(path, store)

    assert list(Order.objects.order_by("pk").values()) == before
    assert OrderEvent.objects.count() == events
    assert "Already known: 3" in printed and "Recorded" not in printed


def test_an_update_that_would_go_backwards_is_counted_as_ignored_and_noted_once(
    tmp_path, store, campaign
):
    (order,) = orders(campaign, "KK-1")
    record_delivery(order, D.DELIVERED, via="shopify")
    path = write(tmp_path, "order id,status\nKK-1,In transit\n")

    first, second = run(path, store), run(path, store)

    assert "Ignored: the parcel is further along: 1" in first
    assert "Ignored: the parcel is further along: 1" in second
    assert delivery_of(store, "KK-1") == (D.DELIVERED, "shopify", "")
    assert order.events.filter(kind=OrderEvent.Kind.DELIVERY_IGNORED).count() == 1


def test_an_xlsx_with_leopards_headers_is_read_as_a_csv_is(tmp_path, store, campaign):
    orders(campaign, "1001", "1002")
    path = tmp_path / "leopards.xlsx"
    path.write_bytes(
        sheet_xlsx(
            [
                ("CN #", "Shipment Reference", "Consignee", "Booked Packet Status"),
                ("LE7788", 1001, "Ayesha", "RETURN TO ORIGIN"),
                ("LE7789", 1002, "Bilal", "Dispatched"),
            ]
        )
    )

    printed = run(path, store)

    assert delivery_of(store, "1001") == (D.RETURNED, "sheet", "LE7788")
    assert delivery_of(store, "1002") == (D.SHIPPED, "sheet", "LE7789")
    assert "Recorded: 2" in printed


@pytest.mark.parametrize(
    ("header", "columns"),
    [
        (["Order ID", "Status"], {"order": 0, "status": 1}),
        (["\ufefforder_id", "delivery-status"], {"order": 0, "status": 1}),
        (
            ["Consignment No.", "ORDER NUMBER", "Parcel Status"],
            {"tracking": 0, "order": 1, "status": 2},
        ),
        (["Reference No", "Shipment Status", "Track No"], {"order": 0, "status": 1, "tracking": 2}),
        (["Ref #", "City", "Current Status", "CN"], {"order": 0, "status": 2, "tracking": 3}),
        (["OrderID", "Order Status"], {"order": 0, "status": 1}),
        # The best-named column wins: an order id over a reference, a delivery status over a
        # bare status.
        (["Reference", "Order Ref", "Status", "Delivery Status"], {"order": 1, "status": 3}),
    ],
)
def test_the_order_status_and_tracking_columns_are_found_by_their_name_in_any_spelling(
    header, columns
):
    assert parcel_columns(header) == columns


def test_a_header_without_an_order_or_status_column_changes_nothing_and_says_what_it_found(
    tmp_path, store, campaign
):
    orders(campaign, "KK-1")

    with pytest.raises(CommandError) as refused:
        run(write(tmp_path, "Tracking Number,Consignee,State\nPX-1,Ayesha,Delivered\n"), store)

    assert "no column of the header names the orders and none their parcels' status" in str(
        refused.value
    )
    assert "found: Tracking Number, Consignee, State" in str(refused.value)
    assert delivery_of(store, "KK-1") == ("", "", "")
    with pytest.raises(ImportFileError, match="names the parcels. status: .* like Status"):
        parcel_columns(["Order Ref", "City"])


@pytest.mark.parametrize(
    ("word", "delivery"),
    [
        ("Delivered", D.DELIVERED),
        ("DELIVERED", D.DELIVERED),
        ("Shipment - Delivered", D.DELIVERED),
        ("Returned", D.RETURNED),
        ("RTO", D.RETURNED),
        ("Return to origin", D.RETURNED),
        ("Return to Shipper", D.RETURNED),
        ("Returned to vendor", D.RETURNED),
        ("Return - In Transit", D.RETURNED),
        ("RTS", D.RETURNED),
        ("Dispatched", D.SHIPPED),
        ("In Transit", D.SHIPPED),
        ("Out for delivery", D.SHIPPED),
        ("Booked", D.SHIPPED),
        ("Consignment Booked", D.SHIPPED),
        ("Picked up", D.SHIPPED),
        ("Picked By PostEx", D.SHIPPED),
        ("Arrived at Station", D.SHIPPED),
        ("Shipped", D.SHIPPED),
        ("Undelivered", None),
        ("Not delivered", None),
        ("Unbooked", None),
        ("Pending", None),
        ("Cancelled", None),
        ("Attempted", None),
    ],
)
def test_couriers_status_words(word, delivery):
    assert delivery_of_word(word) == delivery


def test_a_reference_matches_with_or_without_a_hash_and_whatever_its_case(store, campaign):
    a, b, c, d, _d2, e = orders(campaign, "#1001", "1002", "KK-9", "kk-7", "KK-7", "Kk-8")

    assert match_orders(store, ["1001", "#1002", "kk-9", "#KK-9", "Kk-7", "kk-7", "KK-8"]) == {
        "1001": a.pk,
        "#1002": b.pk,
        "kk-9": c.pk,
        "#KK-9": c.pk,
        "Kk-7": -1,  # kk-7 or KK-7: several, not a guess
        "kk-7": d.pk,  # exact wins
        "KK-8": e.pk,
    }


def test_another_stores_order_of_the_same_id_is_left_alone(tmp_path, store, campaign):
    other = Store(name="Lahore Looms")
    other.api_key = "another-key"
    other.save()
    (theirs,) = orders(Campaign.objects.create(store=other, name="x"), "KK-1")

    printed = run(write(tmp_path, "order,status\nKK-1,Delivered\n"), store)

    assert "Not an order of this store: 1" in printed
    theirs.refresh_from_db()
    assert theirs.delivery == ""


def test_the_sample_sheet_reads_without_a_problem_of_its_own(store, campaign):
    orders(campaign, *(f"KK-100{n}" for n in range(1, 7)))

    printed = run(SAMPLE, store)

    assert "Recorded: 6" in printed
    assert delivery_of(store, "KK-1003")[0] == D.SHIPPED  # written "#KK-1003" by the courier
    assert delivery_of(store, "KK-1005")[0] == D.RETURNED


# --- The batch path: what one record_delivery per row would have done --------------------------


def test_a_batch_records_as_one_record_delivery_per_update_would(store, campaign):
    queued, shipped, twice, delivered = orders(campaign, "KK-1", "KK-2", "KK-3", "KK-4")
    Store.objects.filter(pk=store.pk).update(return_cost=Decimal("450.00"))
    (cancelled,) = orders(
        campaign, "KK-5", decision="cancelled", decided_via="key", decided_at=timezone.now()
    )
    assert figures_of(store).returns_avoided == Decimal("450.00")
    Order.objects.filter(pk=queued.pk).update(followup="unreachable", followup_at=timezone.now())
    record_delivery(shipped, D.SHIPPED, via="shopify", tracking="TCS-1")
    record_delivery(delivered, D.DELIVERED, via="shopify")

    verdicts = record_deliveries(
        store,
        [
            (queued.pk, D.SHIPPED, "LEO-1"),
            (shipped.pk, D.DELIVERED, ""),
            (twice.pk, D.SHIPPED, "A"),
            (twice.pk, D.DELIVERED, "B"),
            (delivered.pk, D.SHIPPED, ""),
            (delivered.pk, D.SHIPPED, ""),
            (10**9, D.SHIPPED, ""),
            (cancelled.pk, D.RETURNED, ""),
        ],
        via="sheet",
    )

    V = DeliveryVerdict
    assert verdicts == [V.APPLIED] * 4 + [V.BACKWARDS, V.BACKWARDS, None, V.APPLIED]
    # Counted by batch, not by the update trigger: the figures are exact (as after every test).
    figures = figures_of(store)
    assert (figures.shipped, figures.delivered, figures.returned) == (5, 3, 1)
    assert figures.returns_avoided == 0 and counters.mismatches() == []
    queued.refresh_from_db()
    assert (queued.delivery, queued.tracking, queued.followup) == (D.SHIPPED, "LEO-1", "")
    assert queued.events.filter(kind="followup_closed", data__why="shipped").count() == 1
    assert delivery_of(store, "KK-2") == (D.DELIVERED, "sheet", "TCS-1")  # tracking kept
    assert delivery_of(store, "KK-3") == (D.DELIVERED, "sheet", "B")
    assert [
        e.data.get("previous", "") for e in twice.events.filter(kind="delivery").order_by("pk")
    ] == [
        "",
        D.SHIPPED,
    ]
    ignored = delivered.events.get(kind="delivery_ignored")
    assert ignored.data == {
        "delivery": D.SHIPPED,
        "via": "sheet",
        "delivery_at": ignored.data["delivery_at"],
        "why": "backwards",
        "current": D.DELIVERED,
    }
    assert delivery_of(store, "KK-4") == (D.DELIVERED, "shopify", "")


def test_the_installed_batch_counting_is_the_one_the_code_writes():
    """A change to calls_count_orders or to the update trigger needs a migration installing it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_functiondef('calls_count_orders'::regproc)")
        (installed,) = cursor.fetchone()
        cursor.execute(
            "SELECT pg_get_triggerdef(oid) FROM pg_trigger "
            "WHERE tgname = 'calls_order_count_update'"
        )
        (trigger,) = cursor.fetchone()

    def body(sql: str) -> str:
        inside = sql.split("$function$" if "$function$" in sql else "$$")[1]
        return " ".join(inside.split())

    assert body(installed) == body(counters.order_batch_function_sql())
    assert "current_setting('robodash.count_orders'::text, true)" in trigger


def test_a_sheet_that_first_says_shipped_queues_the_stores_notice_once(tmp_path, store, campaign):
    from calls.models import Call

    store.notify_on_shipped = 103
    store.save()
    orders(campaign, "KK-1", "KK-2")
    sheet = write(tmp_path, "Order Ref,Status\nKK-1,Dispatched\nKK-2,Delivered\n")

    run(sheet, store)
    run(sheet, store)

    notices = Call.objects.filter(purpose=Call.Purpose.NOTICE)
    assert [(c.order_id, c.notice_of, c.voice_id) for c in notices] == [("KK-1", "shipped", 103)]
