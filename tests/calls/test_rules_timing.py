"""The rules about time and repeats: a stale order held, the first call held back by the store's
delay, the calls to one phone capped per day at the worker's claim, and a new order from a phone
with an undecided one linked to it as a possible duplicate."""

from __future__ import annotations

import datetime as dt
import io
import threading
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from calls import actions
from calls.formatting import verdict_reasons
from calls.intake import uploads
from calls.intake.bulk import add_orders
from calls.intake.rows import OrderRow, parse_placed_at
from calls.intake.single import create_single_call
from calls.models import Call, CallEvent, Campaign, Order, Store
from calls.pipeline import dispatch
from calls.rules import NO_HISTORY, OrderFacts, StoreRules, judge
from calls.templatetags.present import event_details
from calls.transitions import decide_by_hand
from shops.intake import withdraw_order

pytestmark = pytest.mark.django_db

PHONE = "923001234567"
HEADER = "phone,amount,order_id,store_name,placed_at"
KARACHI = dt.timezone(dt.timedelta(hours=5))
NOON = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)


def single(store: Store, order_id: str, phone: str = "0300 1234567", **fields) -> Order:
    campaign, _ = Campaign.objects.get_or_create(store=store, name="Single")
    return create_single_call(
        campaign, phone=phone, amount="1500", order_id=order_id, store_name="S", **fields
    )


def set_rules(store: Store, **rules: int | None) -> Store:
    Store.objects.filter(pk=store.pk).update(**rules)
    store.refresh_from_db()
    return store


# --- stale: placed long before it arrived --------------------------------------------------------


def placed(hours_before: float, arrived: dt.datetime = NOON) -> OrderFacts:
    return OrderFacts(PHONE, Decimal(1500), arrived - dt.timedelta(hours=hours_before), arrived)


def test_an_order_placed_longer_before_it_arrived_than_the_limit_is_held_as_stale():
    rules = StoreRules(stale_after_hours=48)

    stale = judge(placed(72), rules, NO_HISTORY)

    assert (stale.kind, stale.reasons) == ("hold", [{"rule": "stale", "hours": 72}])
    assert verdict_reasons(stale.reasons) == "arrived 3 days after it was placed"
    assert judge(placed(48), rules, NO_HISTORY).kind == "call"  # not more than the limit
    assert (
        verdict_reasons([{"rule": "stale", "hours": 30}]) == "arrived 30 hours after it was placed"
    )


def test_no_placed_time_a_placed_time_in_the_future_or_no_limit_is_never_stale():
    rules = StoreRules(stale_after_hours=1)
    unknown = OrderFacts(PHONE, Decimal(1500), None, NOON)

    assert judge(unknown, rules, NO_HISTORY).kind == "call"
    assert judge(placed(-3), rules, NO_HISTORY).kind == "call"  # the shop's clock runs ahead
    assert judge(placed(500), StoreRules(), NO_HISTORY).kind == "call"


def test_a_stale_single_order_is_held_in_the_follow_up_queue_and_not_called(store):
    set_rules(store, stale_after_hours=48)
    now = timezone.now()

    order = single(store, "S-1", placed_at=now - dt.timedelta(days=3), arrived_at=now)

    assert (order.status, order.followup, order.verdict) == ("held", "held", "hold")
    assert order.verdict_reasons == [{"rule": "stale", "hours": 72}]
    assert list(actions.due_followups()) == [order] and not Call.objects.exists()


@pytest.mark.parametrize(
    ("text", "placed_at"),
    [
        ("2026-12-01 14:30", dt.datetime(2026, 12, 1, 14, 30, tzinfo=KARACHI)),  # the store's
        ("2026-12-01T09:30:00Z", dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)),
        ("2026-12-01 14:30:00 +0500", dt.datetime(2026, 12, 1, 14, 30, tzinfo=KARACHI)),
        ("", None),
    ],
)
def test_a_files_placed_at_is_read_with_or_without_its_offset(text, placed_at):
    assert parse_placed_at(text, KARACHI) == placed_at


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("31/12/2026", "is not a date and time (e.g. 2026-11-02 14:30 or"),
        ("2026-12-01", "is not a date and time"),  # a day alone: up to a day off
        ("2026-02-31 10:00", "is not a date and time"),
        ("1999-12-31 23:00", "is before 2000"),
    ],
)
def test_a_placed_at_that_is_no_time_is_refused_saying_why(text, reason):
    with pytest.raises(ValueError, match="placed_at") as refused:
        parse_placed_at(text, KARACHI)
    assert reason in str(refused.value)


def test_import_calls_holds_a_stale_row_calls_the_rest_and_rejects_a_bad_placed_at(store):
    Store.objects.filter(pk=store.pk).update(stale_after_hours=24, timezone="Asia/Karachi")
    campaign = Campaign.objects.create(store=store, name="May")
    local = timezone.now().astimezone(KARACHI).replace(tzinfo=None)
    lines = [
        HEADER,
        f"03001234561,1500,C-1,S,{local - dt.timedelta(days=3):%Y-%m-%d %H:%M}",
        f"03001234562,1500,C-2,S,{local - dt.timedelta(hours=2):%Y-%m-%d %H:%M}",
        "03001234563,1500,C-3,S,",
        "03001234564,1500,C-4,S,yesterday",
    ]

    report = uploads.import_file(io.BytesIO(("\n".join(lines) + "\n").encode()), campaign=campaign)

    assert [str(error) for error in report.rejected] == [
        "row 5: placed_at 'yesterday' is not a date and time (e.g. 2026-11-02 14:30 or "
        "2026-11-02T14:30:00+05:00)"
    ]
    statuses = dict(Order.objects.values_list("order_id", "status"))
    assert statuses == {"C-1": "held", "C-2": "waiting", "C-3": "waiting"}
    stale = Order.objects.get(order_id="C-1")
    assert stale.verdict_reasons == [{"rule": "stale", "hours": 72}]
    assert stale.placed_at is not None
    assert abs(stale.placed_at - (timezone.now() - dt.timedelta(days=3))) < dt.timedelta(minutes=2)
    assert sorted(Call.objects.values_list("order_id", flat=True)) == ["C-2", "C-3"]


# --- the first call's delay ----------------------------------------------------------------------


def test_an_order_to_a_store_with_a_first_call_delay_is_not_called_before_it(store):
    set_rules(store, first_call_delay_minutes=10)

    order = single(store, "D-1")

    call = Call.objects.get(shop_order=order)
    assert order.arrived_at is not None
    assert call.scheduled_for == order.arrived_at + dt.timedelta(minutes=10)
    now = timezone.now()
    assert dispatch.claim_due_sends(now) == []
    assert dispatch._claim_for_sending(call.id, now) is None  # a stray task sends nothing
    assert dispatch.claim_due_sends(call.scheduled_for) == [call.id]


def test_the_delay_counts_from_arrival_and_calling_hours_still_apply(store):
    set_rules(store, first_call_delay_minutes=30)
    arrived = timezone.now() - dt.timedelta(minutes=20)  # a webhook taken in 20 minutes late

    late = single(store, "D-1", arrived_at=arrived)
    long_ago = single(
        store, "D-2", phone="0300 7654321", arrived_at=arrived - dt.timedelta(hours=1)
    )

    assert Call.objects.get(shop_order=late).scheduled_for == arrived + dt.timedelta(minutes=30)
    assert Call.objects.get(shop_order=long_ago).scheduled_for <= timezone.now()  # waited already

    # Closed until 09:00 in the store's zone: the later of the delay and the window's start.
    store.calling_start, store.calling_end = dt.time(9), dt.time(21)
    at_night = dt.datetime(2026, 12, 7, 20, 50, tzinfo=store.zone)
    assert store.first_call_time(at_night, at_night) == dt.datetime(
        2026, 12, 8, 9, 0, tzinfo=store.zone
    )
    morning = dt.datetime(2026, 12, 8, 8, 55, tzinfo=store.zone)
    assert store.first_call_time(morning, morning) == morning + dt.timedelta(minutes=30)


def test_a_shops_cancel_during_the_delay_withdraws_the_call_before_it_is_placed(store):
    set_rules(store, first_call_delay_minutes=10)
    order = single(store, "D-1")

    withdraw_order(store, "D-1")

    call = Call.objects.get(shop_order=order)
    assert (call.state, call.outcome) == ("final", "withdrawn")
    assert dispatch.claim_due_sends(timezone.now() + dt.timedelta(hours=1)) == []


def test_an_imports_calls_wait_for_the_delay(store):
    set_rules(store, first_call_delay_minutes=15)
    campaign = Campaign.objects.create(store=store, name="Bulk")
    before = timezone.now()

    add_orders([OrderRow(2, PHONE, Decimal(1500), "B-1", "S")], campaign, actor_id=None)

    call = Call.objects.get()
    assert call.scheduled_for >= before + dt.timedelta(minutes=15)
    assert dispatch.claim_due_sends(timezone.now()) == []


# --- the calls to one phone in a day -------------------------------------------------------------


def queued_calls(store: Store, count: int, phone: str = PHONE) -> list[Call]:
    """`count` new orders of `store` from `phone`, each with its queued call."""
    start = Order.objects.count()
    orders = [single(store, f"P-{n}", phone=phone) for n in range(start, start + count)]
    return [Call.objects.get(shop_order=order) for order in orders]


def test_a_call_past_the_phones_daily_cap_waits_for_the_next_days_calling_hours(store):
    set_rules(store, max_calls_per_phone_per_day=2)
    first, second, third = queued_calls(store, 3)
    now = timezone.now()

    assert dispatch._claim_for_sending(first.id, now) is not None
    assert dispatch._claim_for_sending(second.id, now) is not None
    assert dispatch._claim_for_sending(third.id, now) is None

    third.refresh_from_db()
    local = now.astimezone(store.zone)
    tomorrow = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(0), store.zone)
    assert (third.state, third.scheduled_for) == ("queued", tomorrow)
    event = third.events.get(kind=CallEvent.Kind.RESCHEDULED)
    assert event.data["phone_cap"] == 2
    assert dict(event_details(event, store.zone))["Why"] == (
        "this phone had 2 calls today, the store's daily cap"
    )
    assert dispatch.claim_due_sends(now) == []


def test_the_cap_counts_every_call_placed_to_the_phone_at_this_store_only(store, agent_user):
    set_rules(store, max_calls_per_phone_per_day=2)
    elsewhere = Store(name="Lahore Linens", calling_start=dt.time(0), calling_end=dt.time(0))
    elsewhere.api_key = "sk-another-store-key-0001"
    elsewhere.save()
    other = queued_calls(elsewhere, 1)[0]
    first, refused = queued_calls(store, 2)
    now = timezone.now()
    assert dispatch._claim_for_sending(other.id, now) is not None  # another store's call
    Call.objects.filter(pk=refused.pk).update(
        state="final", outcome="failed", claimed_at=now, finalized_at=now
    )  # the provider refused it outright: the phone never rang
    assert dispatch._claim_for_sending(first.id, now) is not None
    Call.objects.filter(pk=first.pk).update(state="final", outcome="no_input", finalized_at=now)

    by_hand = actions.call_again(Order.objects.get(pk=first.shop_order_id), agent_user)

    assert dispatch._claim_for_sending(by_hand.id, timezone.now()) is not None  # the 2nd today
    after = queued_calls(store, 1)[0]
    assert dispatch._claim_for_sending(after.id, timezone.now()) is None  # the third is not


def test_a_store_without_a_cap_takes_no_lock_and_counts_nothing(store):
    call = queued_calls(store, 1)[0]

    with CaptureQueriesContext(connection) as queries:
        assert dispatch._claim_for_sending(call.id, timezone.now()) is not None

    sql = [q["sql"] for q in queries.captured_queries]
    assert not [q for q in sql if "advisory" in q or "COUNT(" in q.upper()], sql


def _claim(call_id: int, barrier: threading.Barrier, claimed: list, errors: list) -> None:
    try:
        barrier.wait()
        if dispatch._claim_for_sending(call_id, timezone.now()) is not None:
            claimed.append(call_id)
    except BaseException as exc:  # reported by the test, not lost in the thread
        errors.append(exc)
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_for_the_phones_last_call_of_the_day_place_one(store):
    set_rules(store, max_calls_per_phone_per_day=3)
    placed_today = queued_calls(store, 2)
    for call in placed_today:
        assert dispatch._claim_for_sending(call.id, timezone.now()) is not None
    racing = queued_calls(store, 6)  # six more calls of the phone, one slot left
    barrier = threading.Barrier(len(racing), timeout=30)
    claimed: list[int] = []
    errors: list[BaseException] = []
    workers = [
        threading.Thread(target=_claim, args=(call.id, barrier, claimed, errors)) for call in racing
    ]

    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)

    assert errors == []
    assert len(claimed) == 1
    assert Call.objects.filter(state="sending").count() == 3
    assert Call.objects.filter(state="queued", scheduled_for__gt=timezone.now()).count() == 5


# --- same phone, open order: a possible duplicate ------------------------------------------------


def test_a_new_order_from_a_phone_with_an_open_order_is_linked_and_still_called(admin, store):
    first = single(store, "#1001")

    second = single(store, "#1002")

    assert second.duplicate_of == first
    assert Call.objects.filter(shop_order=second).count() == 1  # still called
    page = admin.get(reverse("order_detail", args=[second.pk])).content.decode()
    assert "Possible duplicate of" in page and reverse("order_detail", args=[first.pk]) in page
    earlier = admin.get(reverse("order_detail", args=[first.pk])).content.decode()
    assert "Possible duplicates" in earlier and reverse("order_detail", args=[second.pk]) in earlier


def test_a_decided_withdrawn_old_or_other_stores_order_is_no_duplicates_original(store, agent_user):
    decided = single(store, "A-1")
    Call.objects.filter(shop_order=decided).update(state="final", outcome="no_input")
    decide_by_hand(decided, agent_user, Order.Decision.CONFIRMED, "rang them")
    withdrawn = single(store, "A-2", phone="0300 1111111")
    withdraw_order(store, "A-2")
    old = single(store, "A-3", phone="0300 2222222")
    Order.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(hours=25))

    assert single(store, "B-1").duplicate_of is None
    assert single(store, "B-2", phone="0300 1111111").duplicate_of is None
    assert single(store, "B-3", phone="0300 2222222").duplicate_of is None
    assert withdrawn.pk and old.pk


def test_a_batch_links_its_orders_to_open_ones_and_to_its_own_earlier_rows(store):
    campaign = Campaign.objects.create(store=store, name="Bulk")
    single(store, "O-1", phone="0300 0000001")
    batch = [
        OrderRow(2, "923000000001", Decimal(1500), "B-1", "S"),
        OrderRow(3, "923000000002", Decimal(1500), "B-2", "S"),
        OrderRow(4, "923000000002", Decimal(1500), "B-3", "S"),
        OrderRow(5, "923000000003", Decimal(1500), "B-4", "S"),
    ]

    with CaptureQueriesContext(connection) as queries:
        add_orders(batch, campaign, actor_id=None)

    links = dict(Order.objects.values_list("order_id", "duplicate_of__order_id"))
    assert links == {"O-1": None, "B-1": "O-1", "B-2": None, "B-3": "B-2", "B-4": None}
    assert len([q for q in queries.captured_queries if "calls_blockedphone" in q["sql"]]) == 1
    assert Call.objects.count() == 5


# --- set from add_store and the settings page ----------------------------------------------------


def command(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_add_store_sets_and_turns_off_the_timing_rules_as_the_form_does(store, monkeypatch):
    monkeypatch.delenv("ROBOCALL_API_KEY", raising=False)
    command(
        *("add_store", store.name, "--update"),
        *("--stale-after", "48", "--first-call-delay", "10"),
        *("--max-calls-per-phone-per-day", "3"),
    )
    store.refresh_from_db()
    assert (store.stale_after_hours, store.first_call_delay_minutes) == (48, 10)
    assert store.max_calls_per_phone_per_day == 3

    command("add_store", store.name, "--update", "--first-call-delay", "off")

    store.refresh_from_db()
    assert (store.first_call_delay_minutes, store.stale_after_hours) == (None, 48)
    with pytest.raises(CommandError) as refused:
        command("add_store", store.name, "--update", "--first-call-delay", "20000")
    assert str(refused.value) == (
        "--first-call-delay must be a whole number of minutes from 1 to 10080, or off, not '20000'"
    )


def test_the_settings_page_saves_the_timing_rules(admin, store):
    form = admin.get(reverse("store_edit", args=[store.pk])).context["form"]
    data = {name: form[name].value() or "" for name in form.fields if name != "api_key"}
    data |= {"stale_after_hours": "72", "max_calls_per_phone_per_day": "2", "paused": ""}
    data["retry_delays"] = "2s, 2s, 2s"

    saved = admin.post(reverse("store_edit", args=[store.pk]), data)

    assert saved.status_code == 302, saved.context["form"].errors
    store.refresh_from_db()
    assert (store.stale_after_hours, store.max_calls_per_phone_per_day) == (72, 2)
    assert store.first_call_delay_minutes is None
