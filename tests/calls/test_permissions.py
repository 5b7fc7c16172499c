"""Every URL of calls/urls.py, asked by every persona, against the role table in calls/permissions.

The list of URLs comes from `calls.urls.urlpatterns` itself, and the expected roles below must name
each of them: a new URL without a row here fails, so none can ship unchecked.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client
from django.urls import URLPattern, reverse
from django.utils import timezone

from calls import urls as calls_urls
from calls.models import Call, Campaign, OrderBatch, Store, User
from calls.permissions import CALL_ACTIONS, EVERYONE, LAUNCH, REPORTS, SETTINGS
from tests.support.orders import create_call

pytestmark = pytest.mark.django_db


# URL name -> the roles that may use it (GET and POST alike).
EXPECTED_ROLES: dict[str, tuple[str, ...]] = {
    "overview": EVERYONE,
    "overview_balances": EVERYONE,
    "call_list": EVERYONE,
    "call_export": REPORTS,
    "call_export_xlsx": REPORTS,
    "call_detail": EVERYONE,
    "call_row": EVERYONE,
    "call_again": CALL_ACTIONS,
    "call_withdraw": CALL_ACTIONS,
    "order_list": EVERYONE,
    "order_export": REPORTS,
    "order_export_xlsx": REPORTS,
    "order_detail": EVERYONE,
    "order_decide": CALL_ACTIONS,
    "order_call_again": CALL_ACTIONS,
    "followup_claim": CALL_ACTIONS,
    "followup_release": CALL_ACTIONS,
    "followup_take_over": CALL_ACTIONS,
    "followup_handled": CALL_ACTIONS,
    "followup_callback": CALL_ACTIONS,
    # Each action its own role: exports REPORTS', decisions CALL_ACTIONS' (test_order_bulk_pages).
    "order_bulk": EVERYONE,
    "order_batch": CALL_ACTIONS,
    "order_phone": CALL_ACTIONS,
    "order_delivery": CALL_ACTIONS,
    # Blocking an order's phone holds its next orders for a person: the agents who meet fake
    # orders in the queue may do it; the store's whole block list is a setting (admins).
    "order_block": CALL_ACTIONS,
    "order_unblock": CALL_ACTIONS,
    "followup_list": CALL_ACTIONS,
    "followup_next": CALL_ACTIONS,
    "campaign_list": EVERYONE,
    "campaign_new": LAUNCH,
    "campaign_single_order": LAUNCH,
    "campaign_upload": LAUNCH,
    "campaign_detail": EVERYONE,
    "campaign_progress": EVERYONE,
    "campaign_launch": LAUNCH,
    "campaign_upload_rejected": LAUNCH,
    "campaign_pause": LAUNCH,
    "campaign_resume": LAUNCH,
    "reports": REPORTS,
    "report_export": REPORTS,
    "report_export_xlsx": REPORTS,
    "settings": SETTINGS,
    "store_new": SETTINGS,
    "store_edit": SETTINGS,
    "store_verify": SETTINGS,
    "store_rules_preview": SETTINGS,
    "store_blocked_phones": SETTINGS,
    "store_block_phone": SETTINGS,
    "store_unblock_phone": SETTINGS,
    "store_delivery_sheet": SETTINGS,
    "store_delivery_sheet_status": SETTINGS,
    "user_new": SETTINGS,
    "user_edit": SETTINGS,
}

URL_NAMES = [p.name for p in calls_urls.urlpatterns if isinstance(p, URLPattern) and p.name]
PERSONAS = ("admin", "agent", "manager")


def test_every_url_has_an_expected_role_row() -> None:
    assert sorted(URL_NAMES) == sorted(EXPECTED_ROLES)
    assert len(URL_NAMES) == len(calls_urls.urlpatterns)  # every pattern is named


@pytest.fixture
def world(
    store: Store, admin_user: User, agent_user: User, manager_user: User
) -> dict[str, object]:
    campaign = Campaign.objects.create(store=store, name="Permissions", created_by=admin_user)
    call = create_call(
        store=store,
        campaign=campaign,
        order_id="PERM-1",
        phone="923001234567",
        amount=Decimal("1500.00"),
        voice_id=102,
        state=Call.State.FINAL,
        outcome=Call.Outcome.CALLBACK_REQUESTED,
        finalized_at=timezone.now(),
    )
    batch = OrderBatch.objects.create(
        action="confirm", created_by=agent_user, order_ids=[call.shop_order_id]
    )
    return {
        "call": call,
        "order": call.shop_order,
        "batch": batch,
        "campaign": campaign,
        "store": store,
        "user": agent_user,
        "admin": admin_user,
        "agent": agent_user,
        "manager": manager_user,
    }


def url_for(name: str, world: dict[str, object]) -> str:
    pattern = next(
        p for p in calls_urls.urlpatterns if isinstance(p, URLPattern) and p.name == name
    )
    if "pk" not in pattern.pattern.converters:
        return reverse(name)
    # The object the pk names, by the URL name's first word: call_*, order_*, campaign_*, store_*,
    # user_*; a follow-up action names its order.
    kind = "batch" if name == "order_batch" else name.split("_")[0].replace("followup", "order")
    assert kind in ("call", "order", "batch", "campaign", "store", "user"), f"no object in {name}"
    target = world[kind]
    return reverse(name, kwargs={"pk": target.pk})  # type: ignore[attr-defined]


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("name", URL_NAMES)
def test_anonymous_visitors_are_sent_to_sign_in(
    client: Client, world: dict[str, object], name: str, method: str
) -> None:
    url = url_for(name, world)

    response = getattr(client, method)(url)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("name", URL_NAMES)
def test_each_role_gets_what_the_role_table_allows(
    client: Client,
    world: dict[str, object],
    provider_url: str,
    name: str,
    persona: str,
    method: str,
) -> None:
    client.force_login(world[persona])  # type: ignore[arg-type]
    url = url_for(name, world)

    response = getattr(client, method)(url)

    if persona not in EXPECTED_ROLES[name]:
        assert response.status_code == 403, f"{persona} {method.upper()} {url}"
        return
    assert response.status_code not in (403, 501), f"{persona} {method.upper()} {url}"
    assert response.status_code < 500, f"{persona} {method.upper()} {url}"
    if response.status_code == 302:
        assert not response["Location"].startswith("/accounts/login/")
