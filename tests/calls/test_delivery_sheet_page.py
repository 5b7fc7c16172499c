"""A courier's sheet uploaded on a store's page: kept for a worker, its progress polled, then what
became of its rows and the first rows it could not use; admins only; a sample to start from."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from calls.intake import delivery_sheets
from calls.models import Campaign, DeliverySheet, Order, Store
from tests.support.pages import text_of

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}
SHEET = (
    b"\xef\xbb\xbfTracking Number,Order Ref,Consignee,Status\r\n"
    b"TCS-1,KK-1,Ayesha,Delivered\r\n"
    b"TCS-2,#KK-2,Bilal,Return to shipper\r\n"
    b"TCS-3,KK-404,Sana,Delivered\r\n"
    b"TCS-4,KK-3,Hina,Lost in transit\r\n"
)


@pytest.fixture
def campaign(store: Store) -> Campaign:
    return Campaign.objects.create(store=store, name="Eid sale")


def orders(campaign: Campaign, *order_ids: str) -> list[Order]:
    return Order.objects.bulk_create(
        Order(
            store=campaign.store,
            campaign=campaign,
            order_id=order_id,
            phone="923001234567",
            amount=Decimal("1500.00"),
            voice_id=102,
        )
        for order_id in order_ids
    )


def upload(client, store: Store, content: bytes, name: str = "tcs.csv"):
    return client.post(
        reverse("store_delivery_sheet", args=[store.pk]),
        {"file": SimpleUploadedFile(name, content)},
    )


def status(client, store: Store):
    return client.get(reverse("store_delivery_sheet_status", args=[store.pk]), **HTMX)


def test_a_sheet_waits_for_a_worker_then_the_page_shows_what_became_of_each_row(
    admin, store, campaign
):
    orders(campaign, "KK-1", "KK-2", "KK-3")
    store_page = reverse("store_edit", args=[store.pk])

    sent = upload(admin, store, SHEET)
    waiting = text_of(admin.get(store_page))
    polled = status(admin, store)
    delivery_sheets.apply_sheet(DeliverySheet.objects.get().pk)  # what the worker runs
    ended = status(admin, store)

    assert sent.status_code == 302 and sent["Location"] == f"{store_page}#courier-sheet"
    assert "Sheet tcs.csv received: its parcels are being recorded." in waiting
    assert "Applying tcs.csv" in waiting and "Waiting for a worker to read the sheet." in waiting
    assert polled.status_code == 200 and 'hx-trigger="every 2s"' in text_of(polled)
    assert ended.status_code == 286  # htmx stops polling
    page = text_of(ended)
    assert "hx-trigger" not in page
    assert "Recorded: 2" in page
    assert "Not an order of this store: 1" in page and "Status word not known: 1" in page
    assert "no order KK-404 in this store" in page
    assert "order KK-3: “Lost in transit” is not a parcel status robodash knows" in page
    delivered = Order.objects.get(order_id="KK-1")
    assert (delivered.delivery, delivered.delivery_via, delivered.tracking) == (
        "delivered",
        "sheet",
        "TCS-1",
    )
    assert Order.objects.get(order_id="KK-2").delivery == "returned"
    assert DeliverySheet.objects.get().content == b""  # the file is not kept once applied


def test_only_the_first_fifty_rows_that_changed_nothing_are_listed_with_how_many_more(admin, store):
    rows = b"".join(b"KK-%d,Delivered\r\n" % n for n in range(55))
    upload(admin, store, b"Order ID,Status\r\n" + rows)

    delivery_sheets.apply_sheet(DeliverySheet.objects.get().pk)
    page = text_of(admin.get(reverse("store_edit", args=[store.pk])))

    assert "Not an order of this store: 55" in page
    assert "no order KK-49 in this store" in page and "KK-50 in" not in page
    assert "… and 5 more rows that changed nothing." in page


def test_a_sheet_without_an_order_column_fails_with_the_reason_and_changes_nothing(
    admin, store, campaign
):
    orders(campaign, "KK-1")
    upload(admin, store, b"Tracking,Status\r\nTCS-1,Delivered\r\n")

    delivery_sheets.apply_sheet(DeliverySheet.objects.get().pk)
    page = text_of(status(admin, store))

    assert "tcs.csv could not be applied" in page
    assert "No column of the header names the orders" in page
    assert Order.objects.get().delivery == ""


def test_an_empty_file_is_refused_at_once_and_nothing_is_kept(admin, store):
    answer = upload(admin, store, b"")

    page = text_of(admin.get(answer["Location"]))
    assert "The submitted file is empty." in page
    assert not DeliverySheet.objects.exists()


def test_a_sheet_whose_worker_was_lost_resumes_after_the_last_order_it_applied(store, campaign):
    first, second = orders(campaign, "KK-1", "KK-2")
    sheet = DeliverySheet.objects.create(
        store=store,
        filename="tcs.csv",
        content=b"Order ID,Status\r\nKK-1,Delivered\r\nKK-2,Delivered\r\nKK-9,Delivered\r\n",
        rows=3,
        applied_through=first.pk,  # a worker applied KK-1's batch, then was lost
        counts={"applied": 1, "unknown_order": 1},
        problems=[[4, "unknown_order", {"ref": "KK-9"}]],
        attempts=1,
        moved_at=timezone.now() - dt.timedelta(minutes=10),
    )

    assert delivery_sheets.resume_stalled_sheets() == [sheet.pk]
    assert delivery_sheets.resume_stalled_sheets() == []  # handed on once
    delivery_sheets.apply_sheet(sheet.pk)

    sheet.refresh_from_db()
    assert sheet.status == "done"
    assert sheet.counts == {"applied": 2, "unknown_order": 1}
    assert sheet.problems == [[4, "unknown_order", {"ref": "KK-9"}]]
    second.refresh_from_db()
    assert second.delivery == "delivered"
    first.refresh_from_db()
    assert first.delivery == ""  # recorded by the lost worker's batch (here: left as it was)


def test_only_an_admin_may_upload_a_sheet_or_follow_one(client, agent_user, store):
    client.force_login(agent_user)

    assert upload(client, store, SHEET).status_code == 403
    assert status(client, store).status_code == 403
    assert not DeliverySheet.objects.exists()


def test_the_store_page_offers_the_sample_sheet_which_is_served(admin, store):
    page = text_of(admin.get(reverse("store_edit", args=[store.pk])))
    sample = admin.get("/static/samples/robodash-courier-sheet-sample.csv")

    assert 'href="/static/samples/robodash-courier-sheet-sample.csv" download' in page
    assert sample.status_code == 200
    assert b"Order Ref" in b"".join(sample.streaming_content)
