"""Rules at intake: the pure judge, the phone histories read in one query per batch, and every
intake path of calls (the single-order form, import_calls' COPY, an upload's launch batches)
storing the verdict and placing no call for a skipped or held order."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from calls import actions
from calls.block_list import block_phone
from calls.formatting import verdict_reasons
from calls.intake import uploads
from calls.intake.bulk import add_orders
from calls.intake.judging import phone_histories
from calls.intake.rows import OrderRow
from calls.intake.single import create_single_call
from calls.models import Call, Campaign, Order, OrderEvent, Store
from calls.rules import NO_HISTORY, OrderFacts, PhoneHistory, StoreRules, judge

pytestmark = pytest.mark.django_db

PHONE, OTHER = "923001234567", "923451234567"
HEADER = "phone,amount,order_id,store_name"


# --- the judge, pure ---------------------------------------------------------------------------


def facts(amount: str = "1500") -> OrderFacts:
    return OrderFacts(PHONE, Decimal(amount))


def test_with_no_rule_on_every_order_is_called():
    verdict = judge(facts("1"), StoreRules(), PhoneHistory(delivered=50, returned=9))
    assert (verdict.kind, verdict.reasons) == ("call", [])


def test_an_amount_below_the_minimum_or_above_the_maximum_is_skipped():
    rules = StoreRules(call_min_amount=Decimal("1000.00"), call_max_amount=Decimal("50000.00"))
    assert judge(facts("999.99"), rules, NO_HISTORY).reasons == [
        {"rule": "below_min", "min": "1000.00"}
    ]
    assert judge(facts("50000.01"), rules, NO_HISTORY).kind == "skip"
    assert judge(facts("1000.00"), rules, NO_HISTORY).kind == "call"
    assert judge(facts("50000.00"), rules, NO_HISTORY).kind == "call"


def test_a_phone_with_enough_deliveries_and_no_return_is_trusted_and_skipped():
    rules = StoreRules(trust_after=4)
    trusted = judge(facts(), rules, PhoneHistory(delivered=4))
    assert (trusted.kind, trusted.reasons) == ("skip", [{"rule": "trusted", "delivered": 4}])
    assert judge(facts(), rules, PhoneHistory(delivered=3)).kind == "call"
    assert judge(facts(), rules, PhoneHistory(delivered=9, returned=1)).kind == "call"


def test_a_blocked_phone_and_one_with_enough_returns_are_held():
    blocked = judge(facts(), StoreRules(), PhoneHistory(blocked=True, block_reason="fake orders"))
    assert (blocked.kind, blocked.reasons) == (
        "hold",
        [{"rule": "blocked", "reason": "fake orders"}],
    )
    rules = StoreRules(hold_after_returns=2)
    assert judge(facts(), rules, PhoneHistory(returned=2)).reasons == [
        {"rule": "returns", "returned": 2}
    ]
    assert judge(facts(), rules, PhoneHistory(returned=1)).kind == "call"


def test_hold_beats_skip_and_every_rule_that_matched_is_named():
    rules = StoreRules(call_min_amount=Decimal(1000), hold_after_returns=1, trust_after=1)
    verdict = judge(facts("300"), rules, PhoneHistory(returned=1, blocked=True))
    assert verdict.kind == "hold"
    assert [reason["rule"] for reason in verdict.reasons] == ["blocked", "returns", "below_min"]
    assert verdict_reasons(verdict.reasons) == "blocked; 1 order returned; below Rs 1,000.00"


# --- the histories -----------------------------------------------------------------------------


def other_store() -> Store:
    store = Store(name="Lahore Linens", calling_start=dt.time(0), calling_end=dt.time(0))
    store.api_key = "sk-another-store-key-0001"
    store.save()
    return store


def past_order(store: Store, order_id: str, delivery: str, phone: str = PHONE) -> Order:
    campaign, _ = Campaign.objects.get_or_create(store=store, name="Past")
    now = timezone.now()
    return Order.objects.create(
        store=store,
        campaign=campaign,
        order_id=order_id,
        phone=phone,
        amount=Decimal(1500),
        voice_id=102,
        text1=store.name,
        text2=order_id,
        delivery=delivery,
        delivery_at=now if delivery else None,
        created_at=now - dt.timedelta(days=10),
    )


def test_a_phones_history_counts_only_this_stores_orders_and_its_block(store):
    elsewhere = other_store()
    for i in range(3):
        past_order(store, f"D-{i}", "delivered")
    past_order(store, "R-1", "returned")
    past_order(store, "S-1", "shipped")
    past_order(elsewhere, "X-1", "returned")
    past_order(elsewhere, "X-2", "delivered", phone=OTHER)
    block_phone(elsewhere, "0345 1234567", "their fake orders")

    with CaptureQueriesContext(connection) as queries:
        histories = phone_histories(store, [PHONE, OTHER, PHONE, "923331234567"])

    assert len(queries) == 1
    assert histories == {PHONE: PhoneHistory(delivered=3, returned=1)}
    assert phone_histories(elsewhere, [PHONE, OTHER]) == {
        PHONE: PhoneHistory(returned=1),
        OTHER: PhoneHistory(delivered=1, blocked=True, block_reason="their fake orders"),
    }


# --- the single-order form ----------------------------------------------------------------------


def single(store: Store, order_id: str, amount: str = "1500", phone: str = "0300 1234567"):
    campaign, _ = Campaign.objects.get_or_create(store=store, name="Single")
    return create_single_call(
        campaign, phone=phone, amount=amount, order_id=order_id, store_name="S"
    )


def test_an_order_below_the_minimum_is_skipped_and_not_called(store):
    Store.objects.filter(pk=store.pk).update(call_min_amount=Decimal(1000))

    order = single(store, "A-1", amount="300")

    order.refresh_from_db()
    assert (order.status, order.verdict, order.followup) == ("skipped", "skip", "")
    assert order.verdict_reasons == [{"rule": "below_min", "min": "1000.00"}]
    assert not Call.objects.exists()
    judged = OrderEvent.objects.get(order=order)
    assert (judged.kind, judged.data["verdict"]) == ("judged", "skip")


def test_a_trusted_customers_order_is_skipped_and_anothers_is_called(store):
    Store.objects.filter(pk=store.pk).update(trust_after=2)
    past_order(store, "D-1", "delivered")
    past_order(store, "D-2", "delivered")

    trusted = single(store, "A-1")
    new_customer = single(store, "A-2", phone="0345 1234567")

    assert (trusted.status, trusted.verdict_reasons) == (
        "skipped",
        [{"rule": "trusted", "delivered": 2}],
    )
    assert Call.objects.get().shop_order == new_customer
    assert (new_customer.status, new_customer.verdict) == ("waiting", "call")


def test_a_blocked_phones_order_is_held_in_the_follow_up_queue_and_not_called(store):
    block_phone(store, "+92 300 1234567", "fake orders")

    order = single(store, "A-1")

    assert (order.status, order.verdict, order.followup) == ("held", "hold", "held")
    assert list(actions.due_followups()) == [order]
    assert not Call.objects.exists()
    assert list(OrderEvent.objects.filter(order=order).values_list("kind", flat=True)) == [
        "judged",
        "followup_opened",
    ]
    assert verdict_reasons(order.verdict_reasons) == "blocked: fake orders"


def test_a_phone_with_enough_returns_is_held_with_every_rule_that_matched(store):
    Store.objects.filter(pk=store.pk).update(hold_after_returns=2, call_min_amount=1000)
    past_order(store, "R-1", "returned")
    past_order(store, "R-2", "returned")

    order = single(store, "A-1", amount="500")

    assert (order.status, order.verdict) == ("held", "hold")
    assert order.verdict_reasons == [
        {"rule": "returns", "returned": 2},
        {"rule": "below_min", "min": "1000.00"},
    ]


def test_call_again_on_a_skipped_order_places_a_call_and_keeps_the_verdict(store, agent_user):
    Store.objects.filter(pk=store.pk).update(call_min_amount=Decimal(1000))
    order = single(store, "A-1", amount="300")

    call = actions.call_again(order, agent_user)

    order.refresh_from_db()
    assert call.state == "queued" and order.status == "waiting"
    assert (order.verdict, order.verdict_reasons) == (
        "skip",
        [{"rule": "below_min", "min": "1000.00"}],
    )


def test_the_form_says_the_order_was_skipped_and_the_order_page_and_list_say_why(
    admin, store, provider_url
):
    Store.objects.filter(pk=store.pk).update(call_min_amount=Decimal(1000))
    data = {
        "store": store.pk,
        "campaign_name": "Single orders",
        "phone": "0300 1234567",
        "amount": "300",
        "order_id": "S-1",
        "store_name": "",
        "voice_id": "",
    }

    page = admin.post(reverse("campaign_single_order"), data, follow=True).content.decode()

    order = Order.objects.get()
    assert order.status == "skipped" and not Call.objects.exists()
    assert "skip it (below Rs 1,000.00)" in page
    detail = admin.get(reverse("order_detail", args=[order.pk])).content.decode()
    assert "rules when it arrived (not called): below Rs 1,000.00" in detail
    assert "Judged by the store" in detail  # the timeline's event
    listed = admin.get(reverse("order_list"), {"verdict": "skip"}).content.decode()
    assert "S-1" in listed and "Skip: below Rs 1,000.00" in listed
    assert "S-1" not in admin.get(reverse("order_list"), {"verdict": "hold"}).content.decode()


# --- the bulk paths: import_calls' COPY and an upload's launch -----------------------------------


def rows(count: int, amount: str = "1500") -> list[OrderRow]:
    return [
        OrderRow(
            row=i + 2,
            phone=f"92300{i:07d}",
            amount=Decimal(amount),
            order_id=f"B-{i}",
            store_name="S",
        )
        for i in range(count)
    ]


def test_a_batch_reads_its_histories_in_one_query_whatever_its_size(store):
    Store.objects.filter(pk=store.pk).update(trust_after=1, hold_after_returns=1)
    store.refresh_from_db()
    campaign = Campaign.objects.create(store=store, name="Bulk")
    past_order(store, "D-1", "delivered", phone="923000000001")
    past_order(store, "R-1", "returned", phone="923000000002")
    block_phone(store, "923000000003", "fake orders")

    def queries_for(batch: list[OrderRow]) -> int:
        with CaptureQueriesContext(connection) as queries:
            add_orders(batch, campaign, actor_id=None)
        histories = [q for q in queries.captured_queries if "calls_blockedphone" in q["sql"]]
        assert len(histories) == 1
        return len(queries)

    small = queries_for(rows(5))
    large = queries_for(
        [
            OrderRow(
                row=r.row,
                phone=r.phone,
                amount=r.amount,
                order_id=f"L-{r.order_id}",
                store_name="S",
            )
            for r in rows(300)
        ]
    )

    assert small == large
    verdicts = dict(
        Order.objects.filter(order_id__startswith="B-").values_list("order_id", "status")
    )
    assert (verdicts["B-1"], verdicts["B-2"], verdicts["B-3"], verdicts["B-4"]) == (
        "skipped",
        "held",
        "held",
        "waiting",
    )
    assert not Call.objects.filter(order_id__in=["B-1", "B-2", "B-3", "L-B-1"]).exists()
    assert Call.objects.filter(order_id="B-4").count() == 1


def test_import_calls_copy_stores_the_verdict_and_places_calls_only_for_orders_to_call(store):
    Store.objects.filter(pk=store.pk).update(call_min_amount=Decimal(1000))
    campaign = Campaign.objects.create(store=store, name="May")
    file = io.BytesIO(
        "\n".join([HEADER, "03001234567,300,C-1,S", "03001234568,1500,C-2,S"]).encode() + b"\n"
    )

    uploads.import_file(file, campaign=campaign)

    assert dict(Order.objects.values_list("order_id", "status")) == {
        "C-1": "skipped",
        "C-2": "waiting",
    }
    assert list(Call.objects.values_list("order_id", flat=True)) == ["C-2"]
    skipped = Order.objects.get(order_id="C-1")
    assert skipped.verdict_reasons == [{"rule": "below_min", "min": "1000.00"}]
    assert skipped.events.get().kind == "judged"


def test_an_uploads_launch_batches_hold_a_blocked_phones_order_and_call_the_rest(store):
    block_phone(store, "0300 0000003", "fake orders")
    campaign = Campaign.objects.create(store=store, name="June", status=Campaign.Status.DRAFT)
    lines = [HEADER, *(f"0300{i:07d},1500,U-{i},Shop" for i in range(7))]
    staged = uploads.stage_upload(
        io.BytesIO(("\n".join(lines) + "\n").encode()), campaign=campaign, filename="june.csv"
    )
    assert uploads.claim_upload(staged)

    done = uploads.launch_upload(staged.pk)

    assert done.imported_rows == 7
    held = Order.objects.get(order_id="U-3")
    assert (held.status, held.followup, held.verdict) == ("held", "held", "hold")
    assert list(actions.due_followups()) == [held]
    assert Call.objects.count() == 6 and not Call.objects.filter(order_id="U-3").exists()


# --- the commands and the settings form ----------------------------------------------------------


def command(name: str, *args: str) -> str:
    out = io.StringIO()
    call_command(name, *args, stdout=out)
    return out.getvalue()


def test_add_store_turns_each_rule_on_and_off_again_as_the_settings_form_does(store, monkeypatch):
    monkeypatch.delenv("ROBOCALL_API_KEY", raising=False)
    command(
        "add_store",
        store.name,
        "--update",
        *("--call-min-amount", "1,000", "--call-max-amount", "50000"),
        *("--trust-after", "4", "--hold-after-returns", "2"),
    )
    store.refresh_from_db()
    assert (store.call_min_amount, store.call_max_amount) == (Decimal(1000), Decimal(50000))
    assert (store.trust_after, store.hold_after_returns) == (4, 2)

    command("add_store", store.name, "--update", "--trust-after", "off", "--call-min-amount", "OFF")

    store.refresh_from_db()
    assert (store.trust_after, store.call_min_amount, store.hold_after_returns) == (None, None, 2)


def test_add_store_refuses_a_rule_out_of_range_naming_its_flag(store, monkeypatch):
    monkeypatch.delenv("ROBOCALL_API_KEY", raising=False)
    with pytest.raises(CommandError) as zero:
        command("add_store", store.name, "--update", "--trust-after", "0")
    assert str(zero.value) == (
        "--trust-after must be a whole number of delivered orders, 1 or more, or off, not '0'"
    )
    with pytest.raises(CommandError) as crossed:
        command(
            *("add_store", store.name, "--update"),
            *("--call-min-amount", "900", "--call-max-amount", "800"),
        )
    assert str(crossed.value) == "--call-max-amount: The most to call is below the least to call."
    store.refresh_from_db()
    assert (store.trust_after, store.call_min_amount) == (None, None)


def test_the_settings_page_saves_the_rules(admin, store):
    page = admin.get(reverse("store_edit", args=[store.pk]))
    form = page.context["form"]
    data = {name: form[name].value() or "" for name in form.fields if name != "api_key"}
    data |= {"call_min_amount": "1000", "hold_after_returns": "3", "paused": ""}
    data["retry_delays"] = "2s, 2s, 2s"

    saved = admin.post(reverse("store_edit", args=[store.pk]), data)

    assert saved.status_code == 302, saved.context["form"].errors
    store.refresh_from_db()
    assert (store.call_min_amount, store.hold_after_returns, store.trust_after) == (
        Decimal(1000),
        3,
        None,
    )


def test_block_phone_and_unblock_phone_take_a_number_in_any_shape(store):
    said = command("block_phone", store.name, "+92 300-1234567", "--reason", "fake orders")
    again = command("block_phone", store.name, "03001234567", "--reason", "five fake orders")

    assert said.strip() == f"0300 1234567 blocked at {store.name!r}."
    assert "already; reason updated" in again
    assert list(store.blocked_phones.values_list("phone", "reason")) == [
        (PHONE, "five fake orders")
    ]
    assert "unblocked" in command("unblock_phone", store.name, "0300 1234567")
    assert "was not blocked" in command("unblock_phone", store.name, "0300 1234567")
    assert not store.blocked_phones.exists()


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("Nowhere", "03001234567", "--reason", "x"), "no store named 'Nowhere'"),
        (
            ("Karachi Kitchenware", "021-3456789", "--reason", "x"),
            "not blocked: phone '021-3456789' is a landline, not a mobile number",
        ),
        (
            ("Karachi Kitchenware", "03001234567", "--reason", "bad\x00"),
            "not blocked: reason contains a control character (U+0000, NUL) at position 4; "
            "a value may hold text, tabs and line breaks only",
        ),
    ],
)
def test_block_phone_says_clearly_what_it_refuses(store, args, error):
    with pytest.raises(CommandError) as refused:
        command("block_phone", *args)
    assert str(refused.value) == error
    assert not store.blocked_phones.exists()


def test_the_follow_up_queue_shows_a_held_order_with_why_and_the_export_says_it(
    admin, store, agent_user
):
    block_phone(store, "0300 1234567", "fake orders")
    single(store, "H-1")

    exported = admin.get(reverse("order_export"), {"verdict": "hold"})
    admin.force_login(agent_user)
    queue = admin.get(reverse("followup_list")).content.decode()

    text = b"".join(exported.streaming_content).decode()
    assert text.count("H-1") == 1 and ",hold,blocked: fake orders" in text
    assert "H-1" in queue and "Held by a rule" in queue and "blocked: fake orders" in queue


def test_a_batchs_histories_read_the_orders_once_not_once_per_phone(store):
    """A plan probing the orders per phone (and ANDing the store's index, which statistics
    taken before a big import make look small) made a 20,000-row import with rules on four times
    slower: the orders are scanned once for the whole batch."""
    for i in range(50):
        past_order(store, f"D-{i}", "delivered", phone=f"92300{i:07d}")
    phones = [f"92300{i:07d}" for i in range(500)]
    with CaptureQueriesContext(connection) as queries:
        phone_histories(store, phones)
    sql = queries.captured_queries[0]["sql"]

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql)
        plan = cursor.fetchone()[0][0]["Plan"]

    def scans(node):
        if node.get("Relation Name") == "calls_order" or "Index Name" in node:
            yield node
        for child in node.get("Plans", []):
            yield from scans(child)

    assert [node["Actual Loops"] for node in scans(plan)] == [1] * len(list(scans(plan)))
    assert len(phone_histories(store, phones)) == 50
