"""CSV orders into calls: validation row by row, duplicates skipped, all or nothing per file."""

import datetime as dt
import io
import threading
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from calls.intake import uploads
from calls.intake.file_errors import ImportFileError
from calls.intake.known import OrderAlreadyKnown, known_reason
from calls.intake.rows import RowError
from calls.intake.single import create_single_call
from calls.intake.uploads import (
    DuplicateRow,
    claim_upload,
    import_file,
    launch_upload,
    stage_upload,
)
from calls.models import Call, CallEvent, Campaign, Order, Store

HEADER = "phone,amount,order_id,store_name"


def csv_file(*lines: str, bom: bool = False, encoding: str = "utf-8") -> io.BytesIO:
    text = "\r\n".join(lines) + "\r\n"
    return io.BytesIO((b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding))


@pytest.fixture
def campaign(store):
    return Campaign.objects.create(store=store, name="May COD", status=Campaign.Status.DRAFT)


# --- importing ---------------------------------------------------------------------------------


def test_each_valid_row_becomes_a_queued_call_with_store_and_order_read_out(campaign, admin_user):
    report = import_file(
        csv_file(
            HEADER,
            "0300-1234567,1500,ORD-1,Karachi Kitchenware",
            '+92 345 6789012,"2,750.50",ORD-2,Karachi Kitchenware',
        ),
        campaign=campaign,
        created_by=admin_user,
    )

    assert (report.imported, report.skipped_duplicates, report.rejected, report.total_rows) == (
        2,
        0,
        [],
        2,
    )
    first, second = Call.objects.filter(campaign=campaign).order_by("order_id")
    assert (first.phone, first.amount, first.text1, first.text2) == (
        "923001234567",
        Decimal("1500.00"),
        "Karachi Kitchenware",
        "ORD-1",
    )
    assert second.amount == Decimal("2750.50")
    assert first.state == Call.State.QUEUED and first.outcome == ""
    assert first.store_id == campaign.store_id
    assert first.scheduled_for == campaign.store.next_calling_time(first.created_at)
    events = CallEvent.objects.filter(call__campaign=campaign, kind=CallEvent.Kind.CREATED)
    assert sorted((e.call.order_id, e.data["row"], e.actor_id) for e in events) == [
        ("ORD-1", 2, admin_user.pk),
        ("ORD-2", 3, admin_user.pk),
    ]


def test_voice_id_comes_from_the_row_else_the_campaign_else_the_store(store):
    store.default_voice_id = 102
    store.save()
    with_voice = Campaign.objects.create(store=store, name="Urdu voice", voice_id=48)
    without_voice = Campaign.objects.create(store=store, name="Default voice")
    rows = (f"{HEADER},voice_id", "03001234567,100,A,S,49", "03001234567,100,B,S,")
    import_file(csv_file(*rows), campaign=with_voice)
    rows = (f"{HEADER},voice_id", "03001234567,100,C,S,49", "03001234567,100,D,S,")
    import_file(csv_file(*rows), campaign=without_voice)

    got = {
        (c.campaign.name, c.order_id): c.voice_id for c in Call.objects.select_related("campaign")
    }
    assert got == {
        ("Urdu voice", "A"): 49,
        ("Urdu voice", "B"): 48,
        ("Default voice", "C"): 49,
        ("Default voice", "D"): 102,
    }


def test_optional_texts_and_keys_are_kept_on_the_call(campaign):
    import_file(
        csv_file(
            "phone,amount,order_id,store_name,text3,text4,text5,key1,key2,key3,key4,key5,notes",
            "03001234567,100,A,S,t3,t4,t5,k1,k2,k3,k4,k5,ignored column",
        ),
        campaign=campaign,
    )
    call = Call.objects.get()
    assert [getattr(call, f"text{i}") for i in (3, 4, 5)] == ["t3", "t4", "t5"]
    assert [getattr(call, f"key{i}") for i in range(1, 6)] == ["k1", "k2", "k3", "k4", "k5"]


def test_header_names_ignore_case_spaces_and_an_excel_bom(campaign):
    report = import_file(
        csv_file(" Phone , AMOUNT ,Order ID,Store-Name", "03001234567,100,A,S", bom=True),
        campaign=campaign,
    )
    assert report.imported == 1
    assert Call.objects.get().order_id == "A"


def test_a_text_stream_with_a_bom_in_the_header_imports_too(campaign):
    report = import_file(io.StringIO(f"\ufeff{HEADER}\n03001234567,100,A,S\n"), campaign=campaign)
    assert report.imported == 1


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("021-3456789,100,A,S", "phone '021-3456789' is a landline, not a mobile number"),
        ("+44 7911 123456,100,A,S", "is a foreign number (+44), not a Pakistani mobile"),
        (",100,A,S", "phone is missing"),
        ("hello,100,A,S", "phone 'hello' is not a number"),
        ("0300-12345,100,A,S", "is too short for a mobile number"),
        ("03001234567,,A,S", "amount is missing"),
        ("03001234567,abc,A,S", "amount 'abc' is not a number"),
        ("03001234567,0,A,S", "amount '0' must be more than 0"),
        ("03001234567,-5,A,S", "amount '-5' must be more than 0"),
        ("03001234567,10.505,A,S", "amount '10.505' has more than 2 decimals"),
        ('03001234567,"1,5",A,S', "amount '1,5' is not a number"),
        ("03001234567,99999999999,A,S", "amount '99999999999' is too large"),
        ("03001234567,100,,S", "order_id is missing"),
        (f"03001234567,100,{'X' * 101},S", "order_id is longer than 100 characters (101)"),
        ("03001234567,100,A,", "store_name is missing"),
        (f"03001234567,100,A,{'S' * 201}", "store_name is longer than 200 characters"),
        ("03001234567,1,500,A,S", "has 5 fields but the header has 4"),
        ("03001234567,100,A", "has 3 fields but the header has 4"),
        ("03001234567,100,A\x00B,S", "order_id contains a control character (U+0000, NUL) at"),
        ("0300\x001234567,100,A,S", "phone contains a control character (U+0000, NUL)"),
        ("03001234567,1\x0050,A,S", "amount contains a control character (U+0000, NUL)"),
        ("03001234567,100,A,Shop\x1b[2J", "store_name contains a control character (U+001B)"),
        ("03001234567,100,A,Shop\x7f", "store_name contains a control character (U+007F)"),
    ],
)
def test_each_bad_row_is_rejected_by_its_row_number_with_the_reason(campaign, row, reason):
    report = import_file(csv_file(HEADER, "03001234567,100,GOOD,S", row), campaign=campaign)

    assert report.imported == 1
    assert len(report.rejected) == 1
    rejected = report.rejected[0]
    assert rejected.row == 3
    assert reason in rejected.message
    assert str(rejected).startswith("row 3: ")


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ("voice_id=abc", "voice_id 'abc' must be a positive whole number"),
        ("voice_id=0", "voice_id '0' must be a positive whole number"),
        ("key1=" + "k" * 51, "key1 is longer than 50 characters (51)"),
        ("text3=" + "t" * 201, "text3 is longer than 200 characters (201)"),
    ],
)
def test_bad_optional_columns_are_rejected_too(campaign, extra, reason):
    column, value = extra.split("=")
    report = import_file(
        csv_file(f"{HEADER},{column}", f"03001234567,100,A,S,{value}"), campaign=campaign
    )
    assert report.imported == 0
    assert [str(e) for e in report.rejected] == [f"row 2: {reason}"]


def test_a_row_with_several_problems_names_them_all(campaign):
    report = import_file(csv_file(HEADER, "042-35761234,free,,S"), campaign=campaign)
    message = report.rejected[0].message
    assert "is a landline" in message
    assert "amount 'free' is not a number" in message
    assert "order_id is missing" in message


def test_tabs_and_line_breaks_inside_a_cell_are_allowed(campaign):
    report = import_file(
        csv_file(HEADER, '03001234567,100,A,"Two\tpart\r\nstore"'), campaign=campaign
    )

    assert (report.imported, report.rejected) == (1, [])
    assert Call.objects.get().text1 == "Two\tpart\r\nstore"


def test_row_numbers_match_the_spreadsheet_across_blank_and_multiline_rows(campaign):
    report = import_file(
        csv_file(
            HEADER,
            "03001234567,100,A,S",
            "",  # row 3: blank, skipped silently
            '03001234567,100,B,"Two-line\nstore name"',  # row 4
            "021-3456789,100,C,S",  # row 5
            ",,,",  # row 6: an empty row Excel leaves behind
        ),
        campaign=campaign,
    )
    assert report.imported == 2
    assert report.total_rows == 3
    assert [e.row for e in report.rejected] == [5]


def test_an_order_repeated_in_the_file_is_skipped_not_rejected(campaign):
    report = import_file(
        csv_file(HEADER, "03001234567,100,A,S", "03451234567,200,A,S", "021-3456789,1,B,S"),
        campaign=campaign,
    )
    assert report.imported == 1
    assert report.skipped_duplicates == 1
    assert report.duplicates == [DuplicateRow(3, "A", "repeats row 2")]
    assert str(report.duplicates[0]) == "row 3: order 'A' repeats row 2, skipped"
    assert [e.row for e in report.rejected] == [4]
    assert Call.objects.get().phone == "923001234567"  # the first one wins


def test_a_rejected_row_does_not_claim_its_order_id(campaign):
    report = import_file(
        csv_file(HEADER, "021-3456789,100,A,S", "03001234567,100,A,S"), campaign=campaign
    )
    assert (report.imported, report.skipped_duplicates, len(report.rejected)) == (1, 0, 1)


def test_importing_the_same_file_twice_places_no_call_for_orders_already_known(campaign):
    rows = (HEADER, "03001234567,100,A,S", "03001234568,100,B,S")
    import_file(csv_file(*rows), campaign=campaign)

    again = import_file(csv_file(*rows, "03001234569,100,C,S"), campaign=campaign)

    assert (again.imported, again.known_count, again.skipped_duplicates) == (1, 2, 0)
    today = Order.objects.get(order_id="A").created_at.astimezone(campaign.store.zone).date()
    assert str(again.known[0]) == (
        f"row 2: order 'A' already known (waiting, since {today:%Y-%m-%d}), not called again"
    )
    assert sorted(Call.objects.values_list("order_id", flat=True)) == ["A", "B", "C"]
    assert Order.objects.count() == 3


def test_the_same_order_id_in_another_campaign_is_already_known_and_not_called(campaign, store):
    other = Campaign.objects.create(store=store, name="June COD")
    import_file(csv_file(HEADER, "03001234567,100,A,S"), campaign=other)
    report = import_file(csv_file(HEADER, "03001234567,100,A,S"), campaign=campaign)
    assert (report.imported, [k.order_id for k in report.known]) == (0, ["A"])
    assert Call.objects.get().campaign == other


def test_a_file_repeating_yesterdays_40_orders_and_10_new_places_exactly_10_calls(campaign, store):
    yesterday = Campaign.objects.create(store=store, name="Eid sale day 1")
    old = [f"03001234567,100,KK-{n},S" for n in range(40)]
    import_file(csv_file(HEADER, *old), campaign=yesterday)
    Order.objects.update(created_at=timezone.now() - dt.timedelta(days=1))
    new = [f"03001234568,200,KK-{n},S" for n in range(40, 50)]

    report = import_file(csv_file(HEADER, *old, *new), campaign=campaign)

    assert (report.imported, report.known_count, report.skipped_duplicates) == (10, 40, 0)
    assert campaign.calls.count() == 10
    assert Call.objects.count() == 50 and Order.objects.count() == 50
    assert set(campaign.calls.values_list("order_id", flat=True)) == {
        f"KK-{n}" for n in range(40, 50)
    }


def test_duplicates_are_found_across_batches(campaign, monkeypatch):
    monkeypatch.setattr(uploads, "BATCH_SIZE", 2)
    import_file(csv_file(HEADER, "03001234567,1,A,S", "03001234567,1,D,S"), campaign=campaign)
    report = import_file(
        csv_file(HEADER, *(f"03001234567,1,{o},S" for o in "ABCDEFA")), campaign=campaign
    )
    assert (report.imported, report.known_count, report.skipped_duplicates) == (4, 2, 1)
    assert Call.objects.filter(campaign=campaign).count() == 6
    assert CallEvent.objects.filter(call__campaign=campaign).count() == 6


def test_the_import_and_an_uploads_launch_store_identical_orders_calls_and_events(
    store, admin_user
):
    rows = (
        f"{HEADER},voice_id,text3,key1",
        '03001234567,"1,500.50",A,Karachi Kitchenware,,t3,k1',
        "03451234567,99,B,Karachi Kitchenware,49,,",
    )
    # Two stores, as each store has an order id once.
    other_store = Store(name="Lahore Linens", calling_start=store.calling_start)
    other_store.calling_end = store.calling_end
    other_store.api_key = "sk-another-store-key-0001"
    other_store.save()
    by_copy = Campaign.objects.create(store=store, name="COPY", voice_id=48)
    by_upload = Campaign.objects.create(store=other_store, name="UPLOAD", voice_id=48)
    import_file(csv_file(*rows), campaign=by_copy, created_by=admin_user)
    staged = stage_upload(
        csv_file(*rows), campaign=by_upload, filename="o.csv", created_by=admin_user
    )
    assert claim_upload(staged)
    launch_upload(staged.pk)

    differ_per_import = {
        *("id", "campaign_id", "created_at", "updated_at", "scheduled_for", "arrived_at"),
        *("store_id", "shop_order_id"),
    }

    def stored(campaign):
        orders = [
            {
                f.attname: getattr(order, f.attname)
                for f in Order._meta.concrete_fields
                if f.attname not in differ_per_import
            }
            for order in campaign.orders.order_by("order_id")
        ]
        calls = [
            {
                f.attname: getattr(call, f.attname)
                for f in Call._meta.concrete_fields
                if f.attname not in differ_per_import
            }
            for call in campaign.calls.order_by("order_id")
        ]
        events = list(
            CallEvent.objects.filter(call__campaign=campaign)
            .order_by("call__order_id")
            .values_list("kind", "data", "actor_id")
        )
        return orders, calls, events

    assert stored(by_copy) == stored(by_upload)
    assert len(stored(by_copy)[0]) == len(stored(by_copy)[1]) == 2
    for campaign in (by_copy, by_upload):
        call = campaign.calls.get(order_id="A")
        assert call.events.get().at == call.created_at
        assert (
            call.shop_order.campaign == campaign and call.shop_order.created_at == call.created_at
        )


def test_an_import_wakes_the_dispatcher_when_it_commits_and_only_if_calls_were_added(
    campaign, django_capture_on_commit_callbacks
):
    file = (HEADER, "03001234567,100,A,S")
    with django_capture_on_commit_callbacks() as first:
        import_file(csv_file(*file), campaign=campaign)
    with django_capture_on_commit_callbacks() as again:
        import_file(csv_file(*file), campaign=campaign)

    assert len(first) == 1
    assert again == []


# --- whole-file problems: nothing imported, nothing lost -----------------------------------------


def test_a_missing_required_column_is_one_clear_error_and_nothing_is_imported(campaign):
    with pytest.raises(ImportFileError) as refused:
        import_file(csv_file("phone,amount,order", "03001234567,100,A"), campaign=campaign)
    message = str(refused.value)
    assert "missing the columns order_id, store_name" in message
    assert "found: phone, amount, order" in message
    assert Call.objects.count() == 0


def test_a_semicolon_separated_file_gets_a_hint(campaign):
    with pytest.raises(ImportFileError, match="separate columns with ';'"):
        import_file(csv_file("phone;amount;order_id;store_name"), campaign=campaign)


def test_an_empty_file_is_refused(campaign):
    with pytest.raises(ImportFileError, match="the file is empty"):
        import_file(io.BytesIO(b""), campaign=campaign)
    with pytest.raises(ImportFileError, match="the file is empty"):
        import_file(io.BytesIO(b"\xef\xbb\xbf\r\n"), campaign=campaign)


def test_a_repeated_column_is_refused(campaign):
    with pytest.raises(ImportFileError, match="'phone' appears twice"):
        import_file(csv_file("phone,amount,order_id,store_name,Phone"), campaign=campaign)


def test_a_file_that_fails_halfway_leaves_the_campaign_as_it_was(campaign, monkeypatch):
    import_file(
        csv_file(HEADER, "03001234567,100,KEEP-1,S", "03001234568,1,KEEP-2,S"), campaign=campaign
    )
    monkeypatch.setattr(uploads, "BATCH_SIZE", 2)
    good_rows = "".join(f"0300123456{i},100,NEW-{i},S\r\n" for i in range(6)).encode()
    # Three batches are inserted before the undecodable bytes (Windows-1252 "é") are reached.
    broken = io.BytesIO(
        f"{HEADER}\r\n".encode() + good_rows + "03001234567,1,Café,S\r\n".encode("cp1252")
    )

    with pytest.raises(ImportFileError, match="not UTF-8"):
        import_file(broken, campaign=campaign)

    assert sorted(Call.objects.values_list("order_id", flat=True)) == ["KEEP-1", "KEEP-2"]
    assert CallEvent.objects.count() == 2


# --- the single-order form -----------------------------------------------------------------------


def test_a_single_order_becomes_one_queued_call(campaign, admin_user):
    order = create_single_call(
        campaign,
        phone="0300 1234567",
        amount="1,250",
        order_id=" ORD-9 ",
        store_name="Karachi Kitchenware",
        text3="extra",
        created_by=admin_user,
    )
    call = order.calls.get()
    assert (order.verdict, order.verdict_reasons) == (Order.Verdict.CALL, [])
    assert (call.phone, call.amount, call.order_id, call.text2, call.text3) == (
        "923001234567",
        Decimal("1250.00"),
        "ORD-9",
        "ORD-9",
        "extra",
    )
    assert call.voice_id == campaign.store.default_voice_id
    assert call.events.get().actor == admin_user


def test_a_bad_single_order_names_each_field_and_stores_nothing(campaign):
    with pytest.raises(ValidationError) as refused:
        create_single_call(campaign, phone="021-3456789", amount="-1", order_id="A", store_name="")
    assert refused.value.message_dict == {
        "phone": ["phone '021-3456789' is a landline, not a mobile number"],
        "amount": ["amount '-1' must be more than 0"],
        "store_name": ["store_name is missing (the voice reads it out to the customer)"],
    }
    assert Call.objects.count() == 0


def test_a_single_order_the_store_already_has_is_refused(campaign):
    create_single_call(
        campaign, phone="03001234567", amount=Decimal(100), order_id="A", store_name="S"
    )
    with pytest.raises(ValidationError) as refused:
        create_single_call(campaign, phone="03001234567", amount=100, order_id="A", store_name="S")
    today = Order.objects.get().created_at.astimezone(campaign.store.zone).date()
    assert refused.value.message_dict == {
        "order_id": [f"order 'A' is already known (waiting, since {today}); it is not called again"]
    }
    assert Call.objects.count() == 1


def test_a_repeated_single_order_raises_an_exception_carrying_the_known_order(campaign):
    first = create_single_call(
        campaign, phone="03001234567", amount=Decimal(100), order_id="A", store_name="S"
    )
    with pytest.raises(OrderAlreadyKnown) as refused:
        create_single_call(campaign, phone="03009876543", amount=200, order_id="A", store_name="S")

    assert refused.value.order == first
    assert isinstance(refused.value, ValidationError)  # the form shows it on its field
    assert list(refused.value.message_dict) == ["order_id"]


def test_row_errors_read_as_the_command_prints_them():
    assert str(RowError(7, "phone '021-3456789' is a landline, not a mobile number")) == (
        "row 7: phone '021-3456789' is a landline, not a mobile number"
    )


# --- two imports at once -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_imports_of_one_campaign_at_once_insert_each_order_once(store):
    campaign = Campaign.objects.create(store=store, name="Race")
    body = f"{HEADER}\n" + "".join(f"03001234567,100,O-{i},S\n" for i in range(3000))
    reports = []
    errors = []

    def run() -> None:
        try:
            reports.append(import_file(io.BytesIO(body.encode()), campaign=campaign))
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert sorted((r.imported, r.known_count) for r in reports) == [(0, 3000), (3000, 0)]
    assert Call.objects.filter(campaign=campaign).count() == 3000
    assert Order.objects.count() == 3000


# --- "already known", worded once ------------------------------------------------------------


def test_already_known_is_worded_once_with_the_day_in_the_stores_zone(campaign, store):
    create_single_call(
        campaign, phone="03001234567", amount=Decimal(100), order_id="A", store_name="S"
    )
    # 22:00 UTC on 1 May is 03:00 on 2 May in Karachi: the store's day is the 2nd.
    Order.objects.update(created_at=dt.datetime(2025, 5, 1, 22, 0, tzinfo=dt.UTC))
    reason = "already known (waiting, since 2025-05-02)"
    file = (HEADER, "03001234567,100,A,S")

    assert known_reason("waiting", dt.datetime(2025, 5, 1, 22, 0, tzinfo=dt.UTC), store) == reason
    with pytest.raises(OrderAlreadyKnown) as by_form:
        create_single_call(campaign, phone="03001234567", amount=100, order_id="A", store_name="S")
    assert by_form.value.message_dict["order_id"] == [
        f"order 'A' is {reason}; it is not called again"
    ]
    staged = stage_upload(csv_file(*file), campaign=campaign, filename="o.csv")
    assert [known.reason for known in uploads.known_rows(staged, 10)] == [reason]
    imported = import_file(csv_file(*file), campaign=campaign)
    assert [str(known) for known in imported.known] == [
        f"row 2: order 'A' {reason}, not called again"
    ]
