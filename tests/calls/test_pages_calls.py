"""The Calls page, a call's page, the follow-up queue and the call actions, via the test client."""

from __future__ import annotations

import csv
import datetime as dt
import io
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.db import connection, connections, transaction
from django.http import QueryDict
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from calls import actions
from calls.models import Call, CallEvent, Campaign, Order, OrderEvent, Store, User
from calls.views import followups
from calls.views.paging import Cursor
from tests.support.orders import create_call
from tests.support.pipeline import wait_for

pytestmark = pytest.mark.django_db


UTC = dt.UTC


@pytest.fixture
def campaign(store: Store) -> Campaign:
    return Campaign.objects.create(store=store, name="Eid sale")


@pytest.fixture
def other_store() -> Store:
    store = Store(name="Lahore Linens")
    store.api_key = "sk-other-store-key-000000000000"
    store.save()
    return store


@pytest.fixture
def other_campaign(other_store: Store) -> Campaign:
    return Campaign.objects.create(store=other_store, name="Winter stock")


@pytest.fixture
def always_open(store: Store) -> Store:
    store.calling_start, store.calling_end = dt.time(0, 0), dt.time(23, 59, 59)
    store.save()
    return store


def make_call(campaign: Campaign, order_id: str = "ORD-1", **fields: Any) -> Call:
    values: dict[str, Any] = {
        "store": campaign.store,
        "campaign": campaign,
        "order_id": order_id,
        "phone": "923001234567",
        "amount": Decimal("2500.00"),
        "voice_id": 102,
        "text1": campaign.store.name,
        "text2": order_id,
        "key1": "0",
    }
    values.update(fields)
    if values.get("outcome") and "state" not in fields:
        values["state"] = Call.State.FINAL
    if values.get("state") == Call.State.FINAL and "finalized_at" not in fields:
        values["finalized_at"] = timezone.now()
    return create_call(**values)


def signed_in(client: Client, user: User) -> Client:
    client.force_login(user)
    return client


def flashes(response: Any) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def listed_order_ids(response: Any) -> list[str]:
    return [call.order_id for call in response.context["rows"]]


# --- the Calls page: filters and search ----------------------------------------------------


def test_calls_page_filters_by_store_campaign_state_and_outcome(
    client: Client, agent_user: User, campaign: Campaign, other_campaign: Campaign
) -> None:
    make_call(campaign, "K-CONFIRMED", outcome=Call.Outcome.CONFIRMED)
    make_call(campaign, "K-QUEUED")
    make_call(other_campaign, "L-CANCELLED", outcome=Call.Outcome.CANCELLED)
    signed_in(client, agent_user)
    url = reverse("call_list")

    by_store = client.get(url, {"store": other_campaign.store.pk})
    by_campaign = client.get(url, {"campaign": campaign.pk})
    by_state = client.get(url, {"state": "queued"})
    by_outcome = client.get(url, {"outcome": "confirmed"})

    assert listed_order_ids(by_store) == ["L-CANCELLED"]
    assert sorted(listed_order_ids(by_campaign)) == ["K-CONFIRMED", "K-QUEUED"]
    assert listed_order_ids(by_state) == ["K-QUEUED"]
    assert listed_order_ids(by_outcome) == ["K-CONFIRMED"]


def test_calls_page_date_range_is_in_the_store_zone(
    client: Client, agent_user: User, campaign: Campaign
) -> None:
    # 20:30 UTC on the 18th is 01:30 on the 19th in Karachi (UTC+5).
    make_call(campaign, "LATE-NIGHT", created_at=dt.datetime(2024, 10, 18, 20, 30, tzinfo=UTC))
    make_call(campaign, "EVENING", created_at=dt.datetime(2024, 10, 18, 18, 30, tzinfo=UTC))
    signed_in(client, agent_user)
    url = reverse("call_list")

    on_19th = client.get(url, {"date_from": "2024-10-19", "date_to": "2024-10-19"})
    on_18th = client.get(url, {"date_from": "2024-10-18", "date_to": "2024-10-18"})

    assert listed_order_ids(on_19th) == ["LATE-NIGHT"]
    assert listed_order_ids(on_18th) == ["EVENING"]


def test_calls_page_explains_a_backwards_date_range_and_a_bad_date(
    client: Client, agent_user: User, campaign: Campaign
) -> None:
    make_call(campaign, "ANY")
    signed_in(client, agent_user)

    backwards = client.get(
        reverse("call_list"), {"date_from": "2024-10-20", "date_to": "2024-10-01"}
    )
    garbage = client.get(reverse("call_list"), {"date_from": "yesterday-ish"})

    assert "The end date is before the start date." in backwards.content.decode()
    assert "Enter a valid date." in garbage.content.decode()
    assert listed_order_ids(garbage) == ["ANY"]  # the bad filter is ignored, not fatal


@pytest.mark.parametrize(
    "typed", ["0300 123", "0300-1234567", "+92 300 12", "300123", "923001234567"]
)
def test_phone_search_understands_partial_local_input(
    client: Client, agent_user: User, campaign: Campaign, typed: str
) -> None:
    make_call(campaign, "MATCH", phone="923001234567")
    make_call(campaign, "OTHER", phone="923451234567")
    signed_in(client, agent_user)

    response = client.get(reverse("call_list"), {"q": typed})

    assert listed_order_ids(response) == ["MATCH"]


def test_search_finds_an_order_id_by_its_beginning(
    client: Client, agent_user: User, campaign: Campaign
) -> None:
    make_call(campaign, "KK-10077")
    make_call(campaign, "KK-20011")
    signed_in(client, agent_user)

    response = client.get(reverse("call_list"), {"q": "KK-100"})

    assert listed_order_ids(response) == ["KK-10077"]


def test_an_htmx_filter_request_gets_only_the_results_fragment(
    client: Client, agent_user: User, campaign: Campaign
) -> None:
    make_call(campaign, "ORD-1")
    signed_in(client, agent_user)

    fragment = client.get(reverse("call_list"), {"q": "ORD"}, headers={"HX-Request": "true"})

    html = fragment.content.decode()
    assert html.lstrip().startswith('<section id="call-results"')
    assert "<nav" in html and "topbar" not in html
    assert "HX-Request" in fragment["Vary"]


# --- keyset pagination ---------------------------------------------------------------------


def test_keyset_pagination_walks_every_call_once_older_and_back_newer(
    client: Client, manager_user: User, campaign: Campaign
) -> None:
    base = dt.datetime(2024, 10, 1, 12, 0, tzinfo=UTC)
    # 130 calls; every third pair shares a created_at so the id must break ties.
    for n in range(130):
        make_call(campaign, f"ORD-{n:03d}", created_at=base + dt.timedelta(seconds=n // 2))
    expected = [c.order_id for c in Call.objects.order_by("-created_at", "-id").only("order_id")]
    signed_in(client, manager_user)

    pages: list[list[str]] = []
    queries: list[str] = []
    url: str | None = reverse("call_list")
    while url:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        queries += [q["sql"] for q in captured.captured_queries]
        pages.append(listed_order_ids(response))
        older = response.context["older_query"]
        url = f"{reverse('call_list')}?{older}" if older else None

    assert [len(page) for page in pages] == [50, 50, 30]
    assert [order for page in pages for order in page] == expected
    assert not [sql for sql in queries if "COUNT(" in sql.upper()]

    # From the last page back towards the newest, through the "newer" links.
    back: list[list[str]] = [pages[-1]]
    newer = response.context["newer_query"]
    while newer:
        response = client.get(f"{reverse('call_list')}?{newer}")
        back.insert(0, listed_order_ids(response))
        newer = response.context["newer_query"]
    assert back == pages


def test_pagination_links_keep_the_filter(
    client: Client, agent_user: User, campaign: Campaign, other_campaign: Campaign
) -> None:
    for n in range(60):
        make_call(campaign, f"K-{n:02d}")
        make_call(other_campaign, f"L-{n:02d}")
    signed_in(client, agent_user)

    first = client.get(reverse("call_list"), {"campaign": campaign.pk})
    second = client.get(f"{reverse('call_list')}?{first.context['older_query']}")

    assert f"campaign={campaign.pk}" in first.context["older_query"]
    assert all(order.startswith("K-") for order in listed_order_ids(second))
    assert len(listed_order_ids(first)) + len(listed_order_ids(second)) == 60


def test_a_mangled_page_link_shows_the_newest_calls_with_a_note(
    client: Client, agent_user: User, campaign: Campaign
) -> None:
    make_call(campaign, "ORD-1")
    signed_in(client, agent_user)

    response = client.get(reverse("call_list"), {"before": "yesterday_or_so"})
    unset = client.get(reverse("call_list"), {"before": f"n_{make_call(campaign, 'ORD-2').pk}"})

    assert response.status_code == 200
    assert listed_order_ids(response) == ["ORD-1"]
    assert "That page link is no longer valid" in response.content.decode()
    # Every call has its created_at: the queue's cursor of an unset moment is none of this list's.
    assert listed_order_ids(unset) == ["ORD-2", "ORD-1"]
    assert "That page link is no longer valid" in unset.content.decode()


def test_a_cursor_reads_back_the_row_it_was_written_from() -> None:
    moment = dt.datetime(2024, 10, 1, 12, 0, 0, 123456, tzinfo=UTC)

    assert Cursor.decode(Cursor(moment, 42).encode()) == Cursor(moment, 42)
    assert Cursor(None, 42).encode() == "n_42"
    assert Cursor.decode("n_42", unset=True) == Cursor(None, 42)
    # A list whose rows all have their moment has no "n_" cursor.
    assert Cursor.decode("n_42") is None


@pytest.mark.parametrize(
    "text",
    ["", "yesterday_or_so", "17_", "_17", "1.5_2", "1_2_3", f"{'9' * 20}_1", f"1_{'9' * 21}"],
)
def test_a_mangled_cursor_is_no_cursor(text: str) -> None:
    assert Cursor.decode(text, unset=True) is None


def test_both_list_pages_write_their_links_with_the_one_cursor(
    client: Client, agent_user: User, campaign: Campaign
) -> None:
    for n in range(followups.PAGE_SIZE + 1):
        make_call(campaign, f"F-{n:02d}", outcome=Call.Outcome.UNREACHABLE)
    for n in range(60):
        make_call(campaign, f"C-{n:02d}")
    signed_in(client, agent_user)

    calls_page = client.get(reverse("call_list"))
    queue = client.get(reverse("followup_list"))

    last_call = calls_page.context["rows"][-1]
    last_followup = queue.context["rows"][-1]["order"]
    older = QueryDict(calls_page.context["older_query"])["before"]
    onward = QueryDict(queue.context["next_query"])["after"]
    assert Cursor.decode(older) == Cursor(last_call.created_at, last_call.pk)
    assert Cursor.decode(onward) == Cursor(last_followup.followup_at, last_followup.pk)


def test_a_mangled_follow_up_page_link_shows_the_queue_from_the_top_with_a_note(
    client: Client, agent_user: User, campaign: Campaign
) -> None:
    make_call(campaign, "F-1", outcome=Call.Outcome.UNREACHABLE)
    signed_in(client, agent_user)

    response = client.get(reverse("followup_list"), {"after": "99999999999999999999_1"})

    assert response.status_code == 200
    assert [row["order"].order_id for row in response.context["rows"]] == ["F-1"]
    assert "That page link is no longer valid" in response.content.decode()


# --- export --------------------------------------------------------------------------------


def test_export_streams_the_current_filter_as_csv(
    client: Client, manager_user: User, campaign: Campaign, other_campaign: Campaign
) -> None:
    make_call(
        campaign,
        '=HYPERLINK("http://evil")',
        outcome=Call.Outcome.CONFIRMED,
        call_status=2,
        dtmf=1,
        retry=0,
        call_charges=Decimal("6.90"),
        provider_call_id="20076",
        created_at=dt.datetime(2024, 10, 19, 7, 30, tzinfo=UTC),
    )
    make_call(other_campaign, "NOT-THIS-STORE")
    signed_in(client, manager_user)

    response = client.get(reverse("call_export"), {"campaign": campaign.pk})

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="calls-')
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert rows[0][:5] == ["order_id", "store", "phone", "amount", "campaign"]
    assert len(rows) == 2
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["order_id"] == '\'=HYPERLINK("http://evil")'  # a formula, defused
    assert row["campaign"] == "Eid sale"
    assert row["outcome"] == "confirmed"
    assert row["charges"] == "6.90"
    assert row["created_at"] == "2024-10-19T12:30:00+05:00"


def test_export_link_is_offered_only_to_roles_that_may_export(
    client: Client, agent_user: User, manager_user: User, campaign: Campaign
) -> None:
    make_call(campaign, "ORD-1")

    as_agent = signed_in(client, agent_user).get(reverse("call_list"))
    as_manager = signed_in(Client(), manager_user).get(reverse("call_list"))

    assert reverse("call_export") not in as_agent.content.decode()
    assert reverse("call_export") in as_manager.content.decode()


# --- the self-refreshing row ---------------------------------------------------------------


def test_a_row_in_flight_keeps_polling_and_a_final_row_answers_286(
    client: Client, agent_user: User, campaign: Campaign
) -> None:
    live = make_call(campaign, "LIVE", state=Call.State.IN_PROGRESS, call_status=1)
    done = make_call(campaign, "DONE", outcome=Call.Outcome.CONFIRMED, call_status=2, dtmf=1)
    signed_in(client, agent_user)

    live_row = client.get(reverse("call_row", args=[live.pk]), headers={"HX-Request": "true"})
    done_row = client.get(reverse("call_row", args=[done.pk]), headers={"HX-Request": "true"})

    assert live_row.status_code == 200
    assert 'hx-trigger="every 3s"' in live_row.content.decode()
    assert f'hx-get="{reverse("call_row", args=[live.pk])}"' in live_row.content.decode()
    assert done_row.status_code == 286
    assert "hx-trigger" not in done_row.content.decode()
    assert "Confirmed (pressed 1)" in done_row.content.decode()


def test_calls_page_rows_poll_only_while_in_flight(
    client: Client, agent_user: User, campaign: Campaign
) -> None:
    make_call(campaign, "LIVE", state=Call.State.QUEUED)
    make_call(campaign, "DONE", outcome=Call.Outcome.CANCELLED)
    signed_in(client, agent_user)

    html = client.get(reverse("call_list")).content.decode()

    assert html.count('hx-trigger="every 3s"') == 1


def test_a_missing_call_is_404_not_500(client: Client, agent_user: User) -> None:
    signed_in(client, agent_user)

    assert client.get(reverse("call_detail", args=[999999])).status_code == 404
    assert client.get(reverse("call_row", args=[999999])).status_code == 404
    assert client.post(reverse("call_again", args=[999999])).status_code == 404


# --- a call's page -------------------------------------------------------------------------


def test_call_page_shows_provider_fields_with_meanings_and_times_in_the_store_zone(
    client: Client, manager_user: User, campaign: Campaign
) -> None:
    call = make_call(
        campaign,
        "ORD-777",
        outcome=Call.Outcome.CALLBACK_REQUESTED,
        provider_call_id="20076",
        call_status=2,
        dtmf=3,
        retry=1,
        call_charges=Decimal("6.90"),
        created_at=dt.datetime(2024, 10, 19, 7, 30, tzinfo=UTC),
        finalized_at=dt.datetime(2024, 10, 19, 7, 32, 5, tzinfo=UTC),
    )
    CallEvent.objects.create(
        call=call, kind=CallEvent.Kind.SENT, at=dt.datetime(2024, 10, 19, 7, 30, 2, tzinfo=UTC)
    )
    CallEvent.objects.create(
        call=call,
        kind=CallEvent.Kind.FINAL,
        at=dt.datetime(2024, 10, 19, 7, 32, 5, tzinfo=UTC),
        data={"call_status": 2, "dtmf": 3},
    )
    signed_in(client, manager_user)

    html = client.get(reverse("call_detail", args=[call.pk])).content.decode()

    assert "20076" in html
    assert "Pressed 3: asked for a callback" in html
    assert "Answered" in html
    assert "1 of 3 free retries" in html
    assert "Rs 6.90" in html
    assert "19 Oct 2024, 12:30" in html  # created, in Karachi time, the one date-time format
    assert "19 Oct 2024, 12:32" in html  # final
    assert html.index("Accepted by provider") < html.index("Final outcome")  # the timeline
    assert "Call again" not in html  # a manager reads, never acts


def test_call_page_offers_the_actions_the_state_allows(
    client: Client, agent_user: User, campaign: Campaign
) -> None:
    queued = make_call(campaign, "Q")
    follow_up = make_call(campaign, "F", outcome=Call.Outcome.UNREACHABLE)
    signed_in(client, agent_user)

    queued_html = client.get(reverse("call_detail", args=[queued.pk])).content.decode()
    follow_html = client.get(reverse("call_detail", args=[follow_up.pk])).content.decode()

    assert reverse("call_withdraw", args=[queued.pk]) in queued_html
    assert reverse("call_again", args=[queued.pk]) not in queued_html
    assert "Work it on the order's page" not in queued_html
    assert reverse("call_withdraw", args=[follow_up.pk]) not in follow_html
    assert reverse("call_again", args=[follow_up.pk]) in follow_html
    # The follow-up work (claim, handled, decide) is the order's: the call page leads there.
    assert "Work it on the order's page" in follow_html
    assert reverse("order_detail", args=[follow_up.shop_order_id]) in follow_html


def test_call_page_panel_polls_while_in_flight_and_stops_with_286(
    client: Client, agent_user: User, campaign: Campaign
) -> None:
    call = make_call(campaign, "Q", state=Call.State.IN_PROGRESS)
    signed_in(client, agent_user)
    htmx = {"HX-Request": "true", "HX-Target": "call-main"}

    in_flight = client.get(reverse("call_detail", args=[call.pk]), headers=htmx)
    Call.objects.filter(pk=call.pk).update(
        state=Call.State.FINAL, outcome=Call.Outcome.CONFIRMED, finalized_at=timezone.now()
    )
    finished = client.get(reverse("call_detail", args=[call.pk]), headers=htmx)

    assert in_flight.status_code == 200
    assert 'hx-trigger="every 3s"' in in_flight.content.decode()
    assert finished.status_code == 286
    assert "hx-trigger" not in finished.content.decode()


# --- call again ----------------------------------------------------------------------------


def test_call_again_queues_a_linked_copy_and_says_so(
    client: Client, agent_user: User, campaign: Campaign, always_open: Store
) -> None:
    original = make_call(
        campaign, "ORD-9", outcome=Call.Outcome.CALLBACK_REQUESTED, text3="extra", key2="7"
    )
    signed_in(client, agent_user)

    response = client.post(reverse("call_again", args=[original.pk]), follow=True)

    child = Call.objects.get(parent=original)
    assert (child.state, child.outcome) == (Call.State.QUEUED, "")
    assert (child.order_id, child.phone, child.amount) == (
        "ORD-9",
        "923001234567",
        Decimal("2500.00"),
    )
    assert (child.text1, child.text2, child.text3, child.key1, child.key2) == (
        "Karachi Kitchenware",
        "ORD-9",
        "extra",
        "0",
        "7",
    )
    assert (child.store_id, child.campaign_id, child.voice_id) == (
        original.store_id,
        original.campaign_id,
        102,
    )
    assert child.scheduled_for <= timezone.now()  # inside calling hours: due now
    assert response.redirect_chain[-1][0] == reverse("call_detail", args=[original.pk])
    assert f"call #{child.pk} is queued" in response.content.decode()
    created = CallEvent.objects.get(call=child, kind=CallEvent.Kind.CREATED)
    noted = CallEvent.objects.get(call=original, kind=CallEvent.Kind.CALLBACK)
    assert created.actor == agent_user and created.data["parent"] == original.pk
    assert noted.actor == agent_user and noted.data["child"] == child.pk


def outside_calling_hours(store: Store) -> None:
    """A one-minute window twelve hours from now: now is certainly outside it."""
    local_now = timezone.now().astimezone(store.zone)
    start = (local_now + dt.timedelta(hours=12)).time().replace(second=0, microsecond=0)
    store.calling_start = start
    store.calling_end = (
        dt.datetime.combine(dt.date(2000, 1, 1), start) + dt.timedelta(minutes=1)
    ).time()
    store.save()


def test_call_again_outside_calling_hours_waits_for_the_next_window(
    client: Client, agent_user: User, campaign: Campaign, store: Store
) -> None:
    outside_calling_hours(store)
    original = make_call(campaign, "ORD-9", outcome=Call.Outcome.NO_INPUT)
    signed_in(client, agent_user)

    before = timezone.now()
    client.post(reverse("call_again", args=[original.pk]))

    child = Call.objects.get(parent=original)
    assert child.scheduled_for == store.next_calling_time(before)
    assert child.scheduled_for > timezone.now() + dt.timedelta(hours=11)


ENGLISH_MONTHS = (
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
)  # fmt: skip
URDU_MONTHS = (
    "جنوری", "فروری", "مارچ", "اپریل", "مئی", "جون",
    "جولائی", "اگست", "ستمبر", "اکتوبر", "نومبر", "دسمبر",
)  # fmt: skip


@pytest.mark.parametrize("language", ["en", "ur"])
def test_call_again_outside_calling_hours_says_when_in_the_readers_language(
    client: Client, agent_user: User, campaign: Campaign, store: Store, language: str
) -> None:
    outside_calling_hours(store)
    original = make_call(campaign, "ORD-9", outcome=Call.Outcome.NO_INPUT)
    agent_user.language = language
    agent_user.save()

    response = signed_in(client, agent_user).post(reverse("call_again", args=[original.pk]))

    [message] = flashes(response)
    scheduled = Call.objects.get(parent=original).scheduled_for.astimezone(store.zone)
    assert f"{scheduled:%H:%M}" in message  # in the store's zone
    month_index = scheduled.month - 1
    if language == "en":
        assert f"({scheduled.day} {ENGLISH_MONTHS[month_index]} {scheduled.year}, " in message
    else:
        assert f"{scheduled.day} {URDU_MONTHS[month_index]} {scheduled.year}" in message
        assert not [month for month in ENGLISH_MONTHS if month in message]


def test_call_again_is_refused_while_the_original_is_in_flight(
    client: Client, agent_user: User, campaign: Campaign
) -> None:
    original = make_call(campaign, "ORD-9", state=Call.State.IN_PROGRESS)
    signed_in(client, agent_user)

    response = client.post(reverse("call_again", args=[original.pk]))

    assert response.status_code == 302
    assert not Call.objects.filter(parent=original).exists()
    assert flashes(response) == [
        f"Not called again: Call #{original.pk} for this order is still in progress; "
        "wait for its outcome before calling again."
    ]


def test_call_again_is_refused_while_an_earlier_call_again_is_queued(
    client: Client, agent_user: User, campaign: Campaign, always_open: Store
) -> None:
    original = make_call(campaign, "ORD-9", outcome=Call.Outcome.UNREACHABLE)
    first = actions.call_again(original.shop_order, agent_user)

    response = signed_in(client, agent_user).post(reverse("call_again", args=[original.pk]))

    assert Call.objects.filter(parent=original).count() == 1
    assert flashes(response) == [
        f"Not called again: Call #{first.pk} for this order is still queued; "
        "wait for its outcome before calling again."
    ]


def test_call_again_of_a_finished_call_again_is_allowed(
    agent_user: User, campaign: Campaign, always_open: Store
) -> None:
    original = make_call(campaign, "ORD-9", outcome=Call.Outcome.UNREACHABLE)
    first = actions.call_again(original.shop_order, agent_user)
    Call.objects.filter(pk=first.pk).update(
        state=Call.State.FINAL, outcome=Call.Outcome.NO_INPUT, finalized_at=timezone.now()
    )

    second = actions.call_again(original.shop_order, agent_user)

    assert second.parent_id == first.pk  # the order's latest call
    assert Call.objects.filter(order_id="ORD-9").count() == 3


# --- withdraw ------------------------------------------------------------------------------


def test_withdraw_stops_a_queued_call(client: Client, agent_user: User, campaign: Campaign) -> None:
    call = make_call(campaign, "ORD-5")
    signed_in(client, agent_user)

    response = client.post(reverse("call_withdraw", args=[call.pk]), follow=True)

    call.refresh_from_db()
    assert (call.state, call.outcome) == (Call.State.FINAL, Call.Outcome.WITHDRAWN)
    assert call.finalized_at is not None
    assert f"Call #{call.pk} withdrawn: it will not be placed." in response.content.decode()
    event = CallEvent.objects.get(call=call, kind=CallEvent.Kind.WITHDRAWN)
    assert event.actor == agent_user


def test_withdraw_after_the_dispatcher_claimed_the_call_says_so_and_changes_nothing(
    client: Client, agent_user: User, campaign: Campaign
) -> None:
    call = make_call(campaign, "ORD-5")
    # The dispatcher's claim: queued -> sending, committed before the HTTP request.
    Call.objects.filter(pk=call.pk).update(state=Call.State.SENDING, claimed_at=timezone.now())
    signed_in(client, agent_user)

    response = client.post(reverse("call_withdraw", args=[call.pk]))

    call.refresh_from_db()
    assert (call.state, call.outcome) == (Call.State.SENDING, "")
    assert flashes(response) == [
        f"Too late to withdraw call #{call.pk}: "
        "the dispatcher has already claimed it (now sending)."
    ]
    assert not CallEvent.objects.filter(call=call, kind=CallEvent.Kind.WITHDRAWN).exists()


def test_withdraw_of_a_final_call_says_there_is_nothing_to_withdraw(
    client: Client, agent_user: User, campaign: Campaign
) -> None:
    call = make_call(campaign, "ORD-5", outcome=Call.Outcome.CONFIRMED)

    response = signed_in(client, agent_user).post(reverse("call_withdraw", args=[call.pk]))

    assert flashes(response) == [
        f"Call #{call.pk} is already final (Confirmed (pressed 1)); there is nothing to withdraw."
    ]


# --- races against another connection (real Postgres locks) --------------------------------


class HeldTransaction:
    """Runs `work` in a transaction on another thread (so another connection) and keeps the
    transaction open, with its row locks, until `commit()`."""

    def __init__(self, work: Callable[[], None]) -> None:
        self._work = work
        self._ready = threading.Event()
        self._release = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise AssertionError("the held transaction did not start")
        if self._error:
            raise self._error

    def _run(self) -> None:
        try:
            with transaction.atomic():
                self._work()
                self._ready.set()
                self._release.wait(20)
        except BaseException as exc:  # reported to the test thread
            self._error = exc
            self._ready.set()
        finally:
            connections.close_all()

    def commit(self) -> None:
        self._release.set()
        self._thread.join(10)
        if self._error:
            raise self._error


def in_thread(work: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def someone_waits_for_a_row_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0


@pytest.fixture
def race_world(transactional_db: None, store: Store, agent_user: User) -> Iterator[Campaign]:
    store.calling_start, store.calling_end = dt.time(0, 0), dt.time(23, 59, 59)
    store.save()
    yield Campaign.objects.create(store=store, name="Race")


def test_withdraw_racing_the_dispatchers_claim_loses_cleanly(
    race_world: Campaign, agent_user: User
) -> None:
    call = make_call(race_world, "ORD-R")
    # The dispatcher has claimed the row (queued -> sending) but not committed yet.
    dispatcher = HeldTransaction(
        lambda: Call.objects.filter(pk=call.pk, state=Call.State.QUEUED).update(
            state=Call.State.SENDING, claimed_at=timezone.now()
        )
    )
    thread, result = in_thread(lambda: actions.withdraw(call, agent_user))
    wait_for(someone_waits_for_a_row_lock, timeout=10, what="withdraw to wait for the claim's lock")

    dispatcher.commit()
    thread.join(10)

    assert result == {"value": False}
    call.refresh_from_db()
    assert (call.state, call.outcome) == (Call.State.SENDING, "")


def test_two_call_agains_at_once_place_one_call(race_world: Campaign, agent_user: User) -> None:
    original = make_call(race_world, "ORD-R", outcome=Call.Outcome.CALLBACK_REQUESTED)
    order = original.shop_order
    # Another agent's call-again, mid-transaction: it holds the order's row lock.
    other_agent = HeldTransaction(lambda: actions.call_again(order, agent_user))
    thread, result = in_thread(lambda: actions.call_again(order, agent_user))
    wait_for(someone_waits_for_a_row_lock, timeout=10, what="the second call-again to wait")

    other_agent.commit()
    thread.join(10)

    assert isinstance(result.get("error"), actions.ActionRefused)
    assert "still queued" in str(result["error"])
    assert Call.objects.filter(parent=original).count() == 1


# --- mark handled and claim ----------------------------------------------------------------


def test_mark_handled_records_the_note_and_who(
    client: Client, agent_user: User, campaign: Campaign
) -> None:
    call = make_call(campaign, "ORD-3", outcome=Call.Outcome.CALLBACK_REQUESTED)
    signed_in(client, agent_user)

    response = client.post(
        reverse("followup_handled", args=[call.shop_order_id]),
        {"note": "  Rang from the shop; confirmed.  "},
    )

    order = Order.objects.get(pk=call.shop_order_id)
    assert (order.followup, order.followup_at, order.claimed_by) == ("", None, None)
    assert flashes(response) == ["Order ORD-3 marked handled."]
    event = OrderEvent.objects.get(order=order, kind=OrderEvent.Kind.HANDLED)
    assert (event.actor, event.data) == (agent_user, {"note": "Rang from the shop; confirmed."})


def test_mark_handled_twice_keeps_the_first_note_and_names_its_author(
    client: Client, agent_user: User, admin_user: User, campaign: Campaign
) -> None:
    call = make_call(campaign, "ORD-3", outcome=Call.Outcome.UNREACHABLE)
    assert actions.mark_handled(call.shop_order, agent_user, "SMS sent")

    response = signed_in(client, admin_user).post(
        reverse("followup_handled", args=[call.shop_order_id]), {"note": "Emailed"}
    )

    [handled] = OrderEvent.objects.filter(order=call.shop_order_id, kind=OrderEvent.Kind.HANDLED)
    assert (handled.actor, handled.data) == (agent_user, {"note": "SMS sent"})
    [message] = flashes(response)
    assert message.startswith("Order ORD-3 was already marked handled by bilal ")
    assert message.endswith(": “SMS sent”")


def test_claim_assigns_a_follow_up_and_a_second_agent_sees_whose_it_is(
    client: Client, agent_user: User, admin_user: User, campaign: Campaign
) -> None:
    call = make_call(campaign, "ORD-2", outcome=Call.Outcome.CALLBACK_REQUESTED)
    claim_url = reverse("followup_claim", args=[call.shop_order_id])

    mine = signed_in(client, agent_user).post(claim_url)
    theirs = signed_in(Client(), admin_user).post(claim_url)
    queue_for_admin = signed_in(Client(), admin_user).get(reverse("followup_list"))

    assert Order.objects.get(pk=call.shop_order_id).claimed_by == agent_user
    assert flashes(mine) == ["Order ORD-2 is yours to follow up."]
    assert flashes(theirs) == ["Order ORD-2 is already claimed by bilal."]
    assert "Claimed by bilal" in queue_for_admin.content.decode()
    assert OrderEvent.objects.filter(order=call.shop_order_id, kind="claimed").count() == 1


def test_an_action_redirects_to_a_safe_next_page_only(
    client: Client, agent_user: User, campaign: Campaign
) -> None:
    call = make_call(campaign, "ORD-2", outcome=Call.Outcome.UNREACHABLE)
    signed_in(client, agent_user)

    back_to_queue = client.post(
        reverse("followup_claim", args=[call.shop_order_id]), {"next": reverse("followup_list")}
    )
    elsewhere = client.post(
        reverse("followup_handled", args=[call.shop_order_id]), {"next": "https://evil.example/"}
    )

    assert back_to_queue["Location"] == reverse("followup_list")
    assert elsewhere["Location"] == reverse("order_detail", args=[call.shop_order_id])


def test_an_action_from_a_queue_row_answers_htmx_with_the_row_and_the_messages(
    client: Client, agent_user: User, campaign: Campaign
) -> None:
    call = make_call(campaign, "ORD-2", outcome=Call.Outcome.UNREACHABLE)
    make_call(campaign, "ORD-OTHER", outcome=Call.Outcome.UNREACHABLE)
    signed_in(client, agent_user)
    pk = call.shop_order_id

    response = client.post(
        reverse("followup_handled", args=[pk]),
        {"note": "done"},
        headers={"HX-Request": "true", "HX-Target": f"followup-{pk}"},
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith(f'<tr id="followup-{pk}" class="followup-row is-handled"')
    assert '<div id="messages"' in html and 'hx-swap-oob="true"' in html
    assert "Order ORD-2 marked handled." in html
    assert (
        '<span id="followup-count" class="nav-count" aria-label="1 open" '
        'hx-swap-oob="true">1</span>' in html
    )


def test_an_action_from_the_call_page_answers_htmx_with_the_call_panel(
    client: Client, agent_user: User, campaign: Campaign
) -> None:
    call = make_call(campaign, "ORD-2")
    signed_in(client, agent_user)

    response = client.post(
        reverse("call_withdraw", args=[call.pk]),
        headers={"HX-Request": "true", "HX-Target": "call-main"},
    )

    html = response.content.decode()
    assert html.lstrip().startswith('<div id="call-main"')
    assert "Withdrawn" in html
    assert f"Call #{call.pk} withdrawn" in html


# --- the follow-up queue -------------------------------------------------------------------


def test_followups_lists_open_follow_ups_oldest_first(
    client: Client, agent_user: User, campaign: Campaign
) -> None:
    now = timezone.now()
    make_call(campaign, "NEWER", outcome=Call.Outcome.UNREACHABLE, finalized_at=now)
    make_call(
        campaign,
        "OLDEST",
        outcome=Call.Outcome.NEEDS_REVIEW,
        finalized_at=now - dt.timedelta(hours=3),
    )
    make_call(
        campaign,
        "MIDDLE",
        outcome=Call.Outcome.CALLBACK_REQUESTED,
        finalized_at=now - dt.timedelta(hours=1),
    )
    make_call(campaign, "CONFIRMED", outcome=Call.Outcome.CONFIRMED)
    make_call(campaign, "QUEUED")
    handled = make_call(campaign, "HANDLED", outcome=Call.Outcome.UNREACHABLE)
    actions.mark_handled(handled.shop_order, agent_user, "")
    signed_in(client, agent_user)

    response = client.get(reverse("followup_list"))

    assert [row["order"].order_id for row in response.context["rows"]] == [
        "OLDEST",
        "MIDDLE",
        "NEWER",
    ]
    assert 'aria-label="3 open"' in response.content.decode()  # the navigation's badge


def test_followups_page_onward_from_the_oldest(
    client: Client, agent_user: User, campaign: Campaign
) -> None:
    start = timezone.now() - dt.timedelta(days=1)
    count = followups.PAGE_SIZE * 2 + 5  # three pages, the last one short
    for n in range(count):
        make_call(
            campaign,
            f"F-{n:02d}",
            outcome=Call.Outcome.UNREACHABLE,
            finalized_at=start + dt.timedelta(minutes=n // 2),
        )
    signed_in(client, agent_user)

    pages = [client.get(reverse("followup_list"))]
    while pages[-1].context["next_query"] is not None:
        pages.append(client.get(f"{reverse('followup_list')}?{pages[-1].context['next_query']}"))

    orders = [row["order"].order_id for page in pages for row in page.context["rows"]]
    assert orders == [f"F-{n:02d}" for n in range(count)]
    assert len(pages) == 3


def test_navigation_shows_the_follow_up_count_only_to_roles_that_work_the_queue(
    client: Client, agent_user: User, manager_user: User, campaign: Campaign
) -> None:
    make_call(campaign, "F", outcome=Call.Outcome.UNREACHABLE)

    agent_html = signed_in(client, agent_user).get(reverse("call_list")).content.decode()
    manager_html = signed_in(Client(), manager_user).get(reverse("call_list")).content.decode()

    assert reverse("followup_list") in agent_html and 'id="followup-count"' in agent_html
    assert reverse("followup_list") not in manager_html and "followup-count" not in manager_html
    assert reverse("reports") in manager_html and reverse("reports") not in agent_html
    assert reverse("settings") not in manager_html


def test_the_follow_up_queue_pages_from_due_callbacks_on_to_the_oldest(
    client: Client, agent_user: User, campaign: Campaign
) -> None:
    start = timezone.now() - dt.timedelta(days=1)
    for n in range(followups.PAGE_SIZE + 3):
        make_call(
            campaign,
            f"F-{n:02d}",
            outcome=Call.Outcome.UNREACHABLE,
            finalized_at=start + dt.timedelta(minutes=n),
        )
    for n in range(followups.PAGE_SIZE + 2):
        call = make_call(campaign, f"CB-{n:02d}", outcome=Call.Outcome.CALLBACK_REQUESTED)
        # A callback time an agent set, come due: these lead the queue, however new.
        Order.objects.filter(pk=call.shop_order_id).update(
            callback_set=True, followup_at=timezone.now() - dt.timedelta(minutes=60 - n)
        )
    signed_in(client, agent_user)

    pages = [client.get(reverse("followup_list"))]
    while pages[-1].context["next_query"] is not None:
        pages.append(client.get(f"{reverse('followup_list')}?{pages[-1].context['next_query']}"))

    orders = [row["order"].order_id for page in pages for row in page.context["rows"]]
    assert orders == [f"CB-{n:02d}" for n in range(followups.PAGE_SIZE + 2)] + [
        f"F-{n:02d}" for n in range(followups.PAGE_SIZE + 3)
    ]
    assert "cb=1" in pages[0].context["next_query"]  # the cursor of a callback row
    assert "cb=1" not in pages[1].context["next_query"]
    assert [len(page.context["rows"]) for page in pages] == [followups.PAGE_SIZE] * 2 + [5]


def test_the_note_that_an_order_was_already_handled_gives_the_date_in_urdu_to_an_urdu_reader(
    client: Client, agent_user: User, admin_user: User, campaign: Campaign, store: Store
) -> None:
    call = make_call(campaign, "ORD-3", outcome=Call.Outcome.UNREACHABLE)
    actions.mark_handled(call.shop_order, agent_user, "SMS sent")
    admin_user.language = "ur"
    admin_user.save()

    response = signed_in(client, admin_user).post(
        reverse("followup_handled", args=[call.shop_order_id]), {"note": "Emailed"}
    )

    [message] = flashes(response)
    handled_at = OrderEvent.objects.get(order=call.shop_order_id, kind="handled").at
    local = handled_at.astimezone(store.zone)
    assert f"{local.day} {URDU_MONTHS[local.month - 1]} {local.year}، {local:%H:%M}" in message
    assert not [month for month in ENGLISH_MONTHS if month in message]
    assert "bilal" in message


def test_mark_handled_is_refused_when_the_note_is_too_long(
    client: Client, agent_user: User, campaign: Campaign
) -> None:
    final = make_call(campaign, "ORD-4", outcome=Call.Outcome.NEEDS_REVIEW)
    signed_in(client, agent_user)

    wordy = client.post(
        reverse("followup_handled", args=[final.shop_order_id]), {"note": "x" * 2001}
    )

    assert flashes(wordy) == [
        "Not marked handled: The note is 2001 characters long; keep it under 2000."
    ]
    assert Order.objects.get(pk=final.shop_order_id).followup == Order.FollowUp.NEEDS_REVIEW


def test_claim_is_refused_for_an_order_that_needs_no_follow_up(
    client: Client, agent_user: User, campaign: Campaign
) -> None:
    call = make_call(campaign, "ORD-2", outcome=Call.Outcome.CONFIRMED)

    response = signed_in(client, agent_user).post(
        reverse("followup_claim", args=[call.shop_order_id])
    )

    assert flashes(response) == ["Order ORD-2 has left the queue."]
    assert Order.objects.get(pk=call.shop_order_id).claimed_by is None


def test_followups_filter_by_reason_and_by_claim(
    client: Client, agent_user: User, admin_user: User, campaign: Campaign
) -> None:
    mine = make_call(campaign, "MINE", outcome=Call.Outcome.UNREACHABLE)
    make_call(campaign, "FREE", outcome=Call.Outcome.CALLBACK_REQUESTED)
    theirs = make_call(campaign, "THEIRS", outcome=Call.Outcome.UNREACHABLE)
    actions.claim(mine.shop_order, agent_user)
    actions.claim(theirs.shop_order, admin_user)
    signed_in(client, agent_user)

    def listed(**params: str) -> list[str]:
        response = client.get(reverse("followup_list"), params)
        return sorted(row["order"].order_id for row in response.context["rows"])

    assert listed(who="mine") == ["MINE"]
    assert listed(who="unclaimed") == ["FREE"]
    assert listed(reason="unreachable") == ["MINE", "THEIRS"]
    assert listed(reason="no-such-reason") == ["FREE", "MINE", "THEIRS"]  # unknown: everyone's
