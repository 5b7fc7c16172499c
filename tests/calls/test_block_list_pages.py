"""The block list on the pages: the order page's Block button (admins and agents, with htmx and
without), and the store's block list on its settings (admins): who blocked which phone, when and
why; a phone blocked by hand, unblocked, found; a long list shown bounded."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from calls.block_list import block_phone
from calls.models import BlockedPhone, Campaign, Order, Store, User

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "order-panel"}
PHONE = "923001234567"
ROWS = re.compile(r'<tr id="blocked-\d+"')


@pytest.fixture
def order(store: Store) -> Order:
    campaign = Campaign.objects.create(store=store, name="Block")
    return Order.objects.create(
        store=store,
        campaign=campaign,
        order_id="B-1",
        phone=PHONE,
        amount=Decimal(1500),
        voice_id=102,
        text1=store.name,
        text2="B-1",
    )


def signed_in(client: Client, user: User) -> Client:
    client.force_login(user)
    return client


def test_an_agent_blocks_the_orders_phone_with_a_reason_and_the_panel_says_so(
    client, agent_user, order
):
    agent = signed_in(client, agent_user)

    response = agent.post(
        reverse("order_block", args=[order.pk]), {"reason": "fake orders"}, **HTMX
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="order-panel"')
    assert "Blocked: fake orders" in html and reverse("order_unblock", args=[order.pk]) in html
    assert "0300 1234567" in html and "is blocked at Karachi Kitchenware" in html  # the flash
    row = BlockedPhone.objects.get(store=order.store, phone=PHONE)
    assert (row.reason, row.created_by) == ("fake orders", agent_user)
    order.refresh_from_db()
    assert order.status == Order.Status.WAITING  # this order is decided here, by a person


def test_a_block_without_a_reason_is_refused(client, agent_user, order):
    agent = signed_in(client, agent_user)

    response = agent.post(reverse("order_block", args=[order.pk]), {"reason": "  "})

    assert response.status_code == 302  # back to the order's page, which says why
    page = agent.get(response["Location"]).content.decode()
    assert "Not blocked: say why" in page
    assert not BlockedPhone.objects.exists()


def test_the_order_page_unblocks_without_javascript(client, admin_user, order):
    block_phone(order.store, PHONE, "fake orders", by=admin_user)
    admin = signed_in(client, admin_user)

    page = admin.get(reverse("order_detail", args=[order.pk])).content.decode()
    assert "Blocked: fake orders" in page and "amina" in page

    response = admin.post(reverse("order_unblock", args=[order.pk]))

    assert response.status_code == 302
    assert not BlockedPhone.objects.exists()
    page = admin.get(response["Location"]).content.decode()
    assert "is unblocked at Karachi Kitchenware" in page
    assert "This phone is not blocked at this store." in page


def test_a_manager_sees_the_block_but_no_button(client, manager_user, order):
    block_phone(order.store, PHONE, "fake orders")
    page = signed_in(client, manager_user).get(reverse("order_detail", args=[order.pk]))
    html = page.content.decode()
    assert "Blocked: fake orders" in html
    assert reverse("order_unblock", args=[order.pk]) not in html
    assert reverse("order_block", args=[order.pk]) not in html


def test_an_admin_blocks_a_phone_by_hand_on_the_store_block_list(admin, admin_user, store):
    response = admin.post(
        reverse("store_block_phone", args=[store.pk]),
        {"phone": "+92 345 1234567", "reason": "ordered ten times, took none"},
    )

    assert response.status_code == 302
    page = admin.get(response["Location"]).content.decode()
    assert "0345 1234567 is blocked at Karachi Kitchenware" in page
    assert "ordered ten times, took none" in page and "amina" in page
    assert "1 phone blocked" in page
    row = BlockedPhone.objects.get()
    assert (row.store, row.phone, row.created_by) == (store, "923451234567", admin_user)


def test_a_phone_that_is_not_a_mobile_is_not_blocked_and_the_page_says_why(admin, store):
    response = admin.post(
        reverse("store_block_phone", args=[store.pk]), {"phone": "021-3456789", "reason": "x"}
    )

    assert response.status_code == 400
    html = response.content.decode()
    assert "021-3456789" in html and 'class="error rd-error"' in html
    assert not BlockedPhone.objects.exists()


def test_unblocking_a_row_with_htmx_removes_it_and_says_so_out_of_band(admin, store):
    block_phone(store, PHONE, "fake orders")

    response = admin.post(
        reverse("store_unblock_phone", args=[store.pk]), {"phone": PHONE}, HTTP_HX_REQUEST="true"
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert 'hx-swap-oob="true"' in html and "0300 1234567 is unblocked" in html
    assert "<tr" not in html
    assert not BlockedPhone.objects.exists()


def test_a_long_block_list_shows_the_newest_with_the_count_and_finds_an_older_one(admin, store):
    BlockedPhone.objects.bulk_create(
        BlockedPhone(store=store, phone=f"92300{k:07d}", reason=f"reason {k}") for k in range(105)
    )
    other = Store(name="Lahore Linens")
    other.api_key = "sk-another-store-key-0001"
    other.save()
    block_phone(other, PHONE, "elsewhere")
    url = reverse("store_blocked_phones", args=[store.pk])

    page = admin.get(url).content.decode()

    assert "105 phones blocked" in page and "The newest 100 are shown" in page
    assert len(ROWS.findall(page)) == 100 and "elsewhere" not in page
    oldest = BlockedPhone.objects.filter(store=store).order_by("created_at", "id").first()
    assert oldest is not None
    found = admin.get(url, {"phone": f"0{oldest.phone[2:]}"}).content.decode()
    assert len(ROWS.findall(found)) == 1 and oldest.reason in found
    refused = admin.get(url, {"phone": "abc"}).content.decode()
    assert not ROWS.findall(refused) and 'role="alert"' in refused
