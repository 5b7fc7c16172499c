"""An upload's launch: claimed once, by batches, resumable after its worker is lost."""

import datetime as dt
import io

import pytest
from django.utils import timezone

from calls.intake import uploads
from calls.models import Campaign, Order, Upload, UploadRow

HEADER = "phone,amount,order_id,store_name"


@pytest.fixture
def staged(store) -> Upload:
    campaign = Campaign.objects.create(store=store, name="May", status=Campaign.Status.DRAFT)
    lines = [HEADER, *(f"0300{i:07d},1500,U-{i},Shop" for i in range(7))]
    file = io.BytesIO(("\n".join(lines) + "\n").encode())
    return uploads.stage_upload(file, campaign=campaign, filename="may.csv")


def test_a_launch_cut_off_after_a_batch_resumes_and_adds_each_order_once(staged, monkeypatch):
    monkeypatch.setattr(uploads, "BATCH_SIZE", 3)
    assert uploads.claim_upload(staged)

    assert uploads._launch_next_batch(staged.pk)  # the worker is lost after one batch
    halfway = Upload.objects.get(pk=staged.pk)
    done = uploads.launch_upload(staged.pk)

    assert (halfway.launched_rows, halfway.launched_through_row) == (3, 4)
    assert (done.status, done.launched_rows, done.imported_rows) == ("launched", 7, 7)
    assert sorted(Order.objects.values_list("order_id", flat=True)) == [f"U-{i}" for i in range(7)]
    assert Campaign.objects.get().status == Campaign.Status.RUNNING
    assert not UploadRow.objects.exists()


def test_a_stalled_launch_is_handed_on_once_and_a_moving_one_not_at_all(staged):
    assert uploads.claim_upload(staged)
    now = timezone.now()

    assert uploads.resume_stalled_launches(now) == []  # it just moved
    later = now + uploads.STALLED_AFTER + dt.timedelta(seconds=1)
    first, second = uploads.resume_stalled_launches(later), uploads.resume_stalled_launches(later)

    assert (first, second) == ([staged.pk], [])
    assert uploads.launch_upload(staged.pk).imported_rows == 7


def test_orders_the_store_got_after_the_preview_are_not_added_at_launch(staged, store):
    uploads.claim_upload(staged)
    Order.objects.create(
        store=store,
        campaign=staged.campaign,
        order_id="U-3",
        phone="923000000003",
        amount=1500,
        voice_id=1,
    )

    done = uploads.launch_upload(staged.pk)

    assert (done.imported_rows, done.known_at_launch) == (6, 1)
    assert Order.objects.filter(order_id="U-3").count() == 1


def test_an_upload_is_claimed_once(staged):
    assert uploads.claim_upload(staged)
    assert not uploads.claim_upload(staged)
