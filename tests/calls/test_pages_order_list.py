"""The Orders page: one row per order, newest first, found by any part of its id or by a phone
however it is written, filtered in the URL, paged by keyset; and its exports."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal
from typing import Any

import openpyxl
import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from calls.exports import ORDER_EXPORT_COLUMNS
from calls.models import Call, Campaign, Order, Store, User
from calls.transitions import record_delivery
from calls.views import order_list as orders_view
from tests.support.orders import create_call, with_orders

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign(store: Store) -> Campaign:
    return Campaign.objects.create(store=store, name="Eid sale")


@pytest.fixture
def other_store(db) -> Store:
    other = Store(name="Lahore Looms", timezone="Asia/Karachi")
    other.api_key = "other-key"
    other.save()
    return other


def add_order(
    campaign: Campaign,
    order_id: str,
    outcome: str = "",
    *,
    phone: str = "923001234567",
    minutes_ago: int = 0,
    **fields: Any,
) -> Order:
    """An order with one call (final with `outcome`, or still queued)."""
    created = timezone.now() - dt.timedelta(minutes=minutes_ago)
    call = create_call(
        store=campaign.store,
        campaign=campaign,
        order_id=order_id,
        phone=phone,
        amount=Decimal("2500.00"),
        voice_id=102,
        state=Call.State.FINAL if outcome else Call.State.QUEUED,
        outcome=outcome,
        finalized_at=created if outcome else None,
        call_charges=Decimal("5.50") if outcome else None,
        created_at=created,
    )
    Order.objects.filter(pk=call.shop_order_id).update(created_at=created, **fields)
    return Order.objects.get(pk=call.shop_order_id)


def listed(client: Client, **params: str) -> list[str]:
    response = client.get(reverse("order_list"), params)
    assert response.status_code == 200
    return [order.order_id for order, _, _ in response.context["rows"]]


@pytest.fixture
def shop(client: Client, manager_user: User, campaign: Campaign, other_store: Store) -> Client:
    add_order(campaign, "#2001", Call.Outcome.CONFIRMED, minutes_ago=5)
    add_order(campaign, "KK-12001", Call.Outcome.CANCELLED, minutes_ago=4, phone="923451112222")
    add_order(campaign, "#7", Call.Outcome.UNREACHABLE, minutes_ago=3)
    add_order(campaign, "A7B", minutes_ago=2, source=Order.Source.SHOPIFY)
    looms = Campaign.objects.create(store=other_store, name="Looms")
    add_order(looms, "LLH-1001", Call.Outcome.CALLBACK_REQUESTED, minutes_ago=1)
    client.force_login(manager_user)
    return client


# --- search ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "found"),
    [
        ("2001", ["KK-12001", "#2001"]),  # any part of the id, newest first
        ("#2001", ["KK-12001", "#2001"]),  # the "#" is optional
        ("llh-1001", ["LLH-1001"]),  # whatever the case
        ("h-10", ["LLH-1001"]),  # a part in the middle
        ("7", ["#7"]),  # one or two characters: the id itself, not every id holding a 7
        ("a7b", ["A7B"]),
        ("0345 111", ["KK-12001"]),  # the start of a phone as a person types it
        ("+92 345-1112222", ["KK-12001"]),
        ("NOWHERE", []),
    ],
)
def test_an_order_is_found_by_any_part_of_its_id_or_its_phone(shop, typed, found):
    assert listed(shop, q=typed) == found


def test_a_search_for_nothing_but_a_hash_shows_every_order(shop):
    assert len(listed(shop, q="#")) == 5


# --- filters -------------------------------------------------------------------------------


def test_the_filters_narrow_the_orders(shop, store, other_store):
    assert listed(shop, store=str(other_store.pk)) == ["LLH-1001"]
    assert listed(shop, status="unreachable") == ["#7"]
    assert listed(shop, decision="confirmed") == ["#2001"]
    assert listed(shop, decision="cancelled") == ["KK-12001"]
    assert listed(shop, decision="none") == ["LLH-1001", "A7B", "#7"]
    assert listed(shop, source="shopify") == ["A7B"]
    assert listed(shop, store=str(store.pk), decision="none") == ["A7B", "#7"]


def test_the_parcel_filter_narrows_the_orders_and_each_row_says_where_its_parcel_is(shop, store):
    record_delivery(Order.objects.get(order_id="#2001"), "delivered", via=Order.DeliveryVia.SHEET)
    record_delivery(Order.objects.get(order_id="KK-12001"), "returned", via=Order.DeliveryVia.API)
    record_delivery(Order.objects.get(order_id="#7"), "shipped", via=Order.DeliveryVia.SHOPIFY)

    assert listed(shop, delivery="delivered") == ["#2001"]
    assert listed(shop, delivery="returned") == ["KK-12001"]
    assert listed(shop, delivery="shipped") == ["#7"]
    assert listed(shop, delivery="none") == ["LLH-1001", "A7B"]  # not known to have shipped
    assert listed(shop, delivery="none", store=str(store.pk)) == ["A7B"]
    page = shop.get(reverse("order_list"), {"delivery": "returned"}).content.decode()
    assert '<option value="returned" selected>Returned</option>' in page
    assert '<span class="badge delivery-returned">Returned</span>' in page
    # A bad value is named and ignored, like any other filter.
    bad = shop.get(reverse("order_list"), {"delivery": "lost"})
    assert len(bad.context["rows"]) == 5
    assert "<strong>Parcel:</strong>" in bad.content.decode()
    assert shop.get(reverse("order_export"), {"delivery": "lost"}).status_code == 400
    # Every row has the column: a badge once shipped, a dash before.
    rows = shop.get(reverse("order_list")).content.decode()
    assert rows.count('class="parcel-cell"') == 5
    assert re.search(r'<td class="parcel-cell"><span class="muted">—</span>\s*</td>', rows)


def test_ready_to_ship_and_needs_a_decision_are_one_click_away(shop):
    page = shop.get(reverse("order_list")).content.decode()
    links = dict(re.findall(r'<a href="/orders/\?([^"]*)"[^>]*>([^<]+)</a>', page))
    ready = next(query for query, label in links.items() if label == "Ready to ship")
    needs = next(query for query, label in links.items() if label == "Needs a decision")

    assert listed(shop, **dict(p.split("=") for p in ready.split("&amp;"))) == ["#2001"]
    # Unreachable and a callback request, neither decided: the agents' queue.
    assert listed(shop, **dict(p.split("=") for p in needs.split("&amp;"))) == ["LLH-1001", "#7"]


def test_a_date_range_is_typed_or_picked_from_the_reports_presets(shop, campaign):
    add_order(campaign, "OLD-1", minutes_ago=60 * 24 * 40)
    add_order(campaign, "WEEK-1", minutes_ago=60 * 24 * 3)
    today = timezone.localdate(timezone=campaign.store.zone)

    assert listed(shop, range="last-7-days", q="WEEK") == ["WEEK-1"]
    assert "WEEK-1" not in listed(shop, range="today")
    assert "OLD-1" not in listed(shop, range="last-30-days")
    assert listed(shop, date_to=(today - dt.timedelta(days=39)).isoformat()) == ["OLD-1"]
    forty = (today - dt.timedelta(days=40)).isoformat()
    assert listed(shop, date_from=forty, date_to=forty) == ["OLD-1"]
    page = shop.get(reverse("order_list"), {"range": "last-7-days"}).content.decode()
    assert 'range=last-7-days" aria-current="true"' in page


def test_a_bad_filter_is_named_and_ignored_and_the_export_refuses_it(shop):
    response = shop.get(reverse("order_list"), {"date_from": "2026-13-45", "decision": "maybe"})
    export = shop.get(reverse("order_export"), {"decision": "maybe"})

    assert response.status_code == 200
    assert len(response.context["rows"]) == 5
    assert "This filter is ignored." in response.content.decode()
    assert export.status_code == 400
    assert "decision" in export.content.decode()


# --- rows and paging -----------------------------------------------------------------------


def test_a_row_says_the_decision_and_who_made_it_with_its_calls_and_charges(
    shop, campaign, agent_user
):
    by_hand = add_order(campaign, "HAND-1", Call.Outcome.NEEDS_REVIEW)
    Order.objects.filter(pk=by_hand.pk).update(
        decision=Order.Decision.CANCELLED,
        decided_via=Order.DecidedVia.AGENT,
        decided_by=agent_user,
        decided_at=timezone.now(),
    )

    response = shop.get(reverse("order_list"))
    rows = {order.order_id: (order, n, charges) for order, n, charges in response.context["rows"]}
    page = response.content.decode()

    assert rows["#2001"][1:] == (1, Decimal("5.50"))
    assert rows["A7B"][1:] == (1, None)
    assert "bilal, by hand" in page
    assert "the customer, by key press" in page
    assert "0300 1234567" in page and "923001234567" not in page.replace("tel:+923001234567", "")
    assert f'href="{reverse("order_detail", args=[rows["#2001"][0].pk])}"' in page


def test_the_orders_are_paged_newest_first_by_keyset(client, manager_user, campaign):
    total = orders_view.PAGE_SIZE * 2 + 7
    for n in range(total):
        add_order(campaign, f"P-{n:03d}", minutes_ago=n)
    client.force_login(manager_user)

    seen, url = [], reverse("order_list")
    while url:
        response = client.get(url)
        seen.append([order.order_id for order, _, _ in response.context["rows"]])
        older = response.context["older_query"]
        url = f"{reverse('order_list')}?{older}" if older else ""
    back = client.get(f"{reverse('order_list')}?{response.context['newer_query']}")

    assert [len(page) for page in seen] == [50, 50, 7]
    assert sum(seen, []) == [f"P-{n:03d}" for n in range(total)]
    assert [o.order_id for o, _, _ in back.context["rows"]] == seen[1]
    bad = client.get(reverse("order_list"), {"before": "not-a-cursor"})
    assert "That page link is no longer valid" in bad.content.decode()


def test_the_navigation_has_orders_and_the_calls_page_opens_an_order_by_its_id(shop):
    calls_page = shop.get(reverse("call_list")).content.decode()
    order = Order.objects.get(order_id="#2001")
    call = order.calls.get()

    assert f'<a href="{reverse("order_list")}"' in calls_page
    assert f'<a href="{reverse("order_detail", args=[order.pk])}"' in calls_page
    assert f'<a href="{reverse("call_detail", args=[call.pk])}">call #{call.pk}</a>' in calls_page
    orders_page = shop.get(reverse("order_list")).content.decode()
    assert f'<a href="{reverse("order_list")}" aria-current="page">Orders</a>' in orders_page


def test_the_page_answers_htmx_with_its_results_only(shop):
    response = shop.get(reverse("order_list"), {"q": "2001"}, headers={"HX-Request": "true"})

    html = response.content.decode()
    assert html.lstrip().startswith('<section id="order-results"')
    assert "#2001" in html and "<header" not in html


def test_the_export_links_carry_the_filters_and_only_exporting_roles_see_them(
    shop, client, agent_user, store
):
    page = shop.get(reverse("order_list"), {"store": store.pk, "decision": "confirmed"})
    html = page.content.decode()

    query = f"store={store.pk}&amp;decision=confirmed"
    assert f'href="{reverse("order_export")}?{query}"' in html
    assert f'href="{reverse("order_export_xlsx")}?{query}"' in html
    client.force_login(agent_user)
    assert reverse("order_export") not in client.get(reverse("order_list")).content.decode()


# --- exports -------------------------------------------------------------------------------


def read_csv(response) -> tuple[bytes, list[list[str]]]:
    body = b"".join(response.streaming_content)
    return body, list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def test_the_orders_csv_has_export_orders_columns_the_bom_and_the_pages_phones(shop, store):
    response = shop.get(reverse("order_export"), {"store": store.pk, "decision": "none"})
    body, rows = read_csv(response)

    assert response.streaming
    assert body.startswith(b"\xef\xbb\xbf")
    assert rows[0] == ORDER_EXPORT_COLUMNS
    by_id = {row[0]: dict(zip(rows[0], row, strict=True)) for row in rows[1:]}
    assert list(by_id) == ["A7B", "#7"]  # the page's filter, newest first
    assert by_id["#7"]["phone"] == "0300 1234567"
    assert by_id["#7"]["store"] == "Karachi Kitchenware"
    assert by_id["#7"]["charges_total"] == "5.50"
    assert dt.datetime.fromisoformat(by_id["#7"]["created_at"]).utcoffset() == dt.timedelta(hours=5)


def test_the_orders_xlsx_has_dates_as_dates_and_amounts_as_numbers(shop):
    response = shop.get(reverse("order_export_xlsx"), {"q": "2001"})
    sheet = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    assert sheet is not None
    header, *rows = list(sheet.iter_rows(values_only=True))
    by_id = {row[0]: dict(zip(header, row, strict=True)) for row in rows}

    assert list(header) == ORDER_EXPORT_COLUMNS
    assert list(by_id) == ["KK-12001", "#2001"]
    confirmed = by_id["#2001"]
    assert isinstance(confirmed["created_at"], dt.datetime)
    assert isinstance(confirmed["decided_at"], dt.datetime)
    assert confirmed["charges_total"] == 5.5 and confirmed["calls"] == 1
    assert confirmed["phone"] == "0300 1234567"
    order = Order.objects.get(order_id="#2001")
    karachi = order.created_at.astimezone(order.store.zone).replace(tzinfo=None, microsecond=0)
    assert confirmed["created_at"] == karachi


def test_the_file_names_say_the_store_and_the_range(shop, store):
    one_store = shop.get(
        reverse("order_export"),
        {"store": store.pk, "date_from": "2026-11-01", "date_to": "2026-11-30"},
    )
    everything = shop.get(reverse("order_export_xlsx"))
    calls = shop.get(reverse("call_export"), {"store": store.pk, "date_from": "2026-11-01"})
    today = timezone.localdate(timezone=store.zone)

    assert (
        'filename="orders-karachi-kitchenware-20261101-20261130.csv"'
        in (one_store["Content-Disposition"])
    )
    assert (
        f'filename="orders-all-stores-until-{today:%Y%m%d}.xlsx"'
        in (everything["Content-Disposition"])
    )
    assert (
        f'filename="calls-karachi-kitchenware-20261101-{today:%Y%m%d}.csv"'
        in (calls["Content-Disposition"])
    )


def test_an_urdu_store_name_survives_in_the_file_name(client, manager_user):
    urdu = Store(name="کراچی برتن")
    urdu.api_key = "urdu-key"
    urdu.save()
    client.force_login(manager_user)

    response = client.get(reverse("order_export"), {"store": urdu.pk, "date_from": "2026-11-01"})

    assert response.status_code == 200
    assert "filename*=utf-8''orders-" in response["Content-Disposition"]


def queries_for(client: Client, url: str) -> int:
    client.get(url)  # warm: the first request of a session may write it
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(captured.captured_queries)


def test_the_page_runs_as_many_queries_for_a_thousand_orders_as_for_ten(
    client, admin_user, campaign, store
):
    def add(start: int, count: int) -> None:
        now = timezone.now()
        calls = [
            Call(
                store=store,
                campaign=campaign,
                order_id=f"ORD-{n:05d}",
                phone=f"92300{n:07d}",
                amount=Decimal("1000.00"),
                voice_id=102,
                state=Call.State.FINAL,
                outcome=[Call.Outcome.CONFIRMED, Call.Outcome.UNREACHABLE][n % 2],
                call_charges=Decimal("5.50"),
                finalized_at=now,
                created_at=now - dt.timedelta(minutes=n),
            )
            for n in range(start, start + count)
        ]
        Call.objects.bulk_create(with_orders(calls))

    add(0, 10)
    client.force_login(admin_user)
    base = reverse("order_list")
    pages = [
        base,
        f"{base}?store={store.pk}&q=0300&decision=none&range=last-7-days",
        f"{base}?q=ORD-000&followup=open",
        f"{base}?status=confirmed&source=csv",
    ]
    with_10 = [queries_for(client, url) for url in pages]
    add(10, 990)
    with_1000 = [queries_for(client, url) for url in pages]

    assert Order.objects.count() == 1000
    assert with_1000 == with_10
    # Session, user, the stores of the filter, the page, its calls and charges, the queue's
    # count in the navigation, and the store a preset's "today" is in.
    assert max(with_10) <= 8, with_10
