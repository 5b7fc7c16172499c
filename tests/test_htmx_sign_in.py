"""htmx requests that meet sign-in or a refusal (robodash.middleware's
HtmxSignInAndRefusalMiddleware): the whole page goes to sign-in, or the page's message area says
why nothing happened."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from calls.models import Call, Campaign, Order
from tests.calls.test_stats import add_calls

pytestmark = pytest.mark.django_db


@pytest.fixture
def call(store) -> Call:
    """A final call whose customer asked for a callback: the follow-up queue's kind of row."""
    [callback] = add_calls(
        Campaign.objects.create(store=store, name="Eid"), 1, outcome=Call.Outcome.CALLBACK_REQUESTED
    )
    return callback


def htmx_from(page: str) -> dict[str, str]:
    return {"HX-Request": "true", "HX-Current-URL": page}


def test_a_signed_out_htmx_action_sends_the_whole_page_to_sign_in_back_to_that_page(
    client: Client, call: Call
) -> None:
    response = client.post(
        reverse("followup_claim", args=[call.shop_order_id]),
        headers=htmx_from("http://testserver/followups/?who=mine"),
    )

    assert response.status_code == 200
    assert response["HX-Redirect"] == "/accounts/login/?next=/followups/%3Fwho%3Dmine"
    assert not response.content  # nothing for htmx to swap into the row


def test_a_signed_out_htmx_poll_from_another_site_returns_to_the_overview(
    client: Client, call: Call
) -> None:
    response = client.get(
        reverse("call_row", args=[call.pk]), headers=htmx_from("https://elsewhere.example/x")
    )

    assert response["HX-Redirect"] == "/accounts/login/?next=/"


def test_a_signed_out_request_without_htmx_is_redirected_as_before(
    client: Client, call: Call
) -> None:
    response = client.post(reverse("followup_claim", args=[call.shop_order_id]))

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next=/orders/{call.shop_order_id}/claim/"


def test_a_refused_htmx_action_answers_with_the_page_message_saying_so(
    client: Client, call: Call, manager_user
) -> None:
    client.force_login(manager_user)

    response = client.post(
        reverse("followup_claim", args=[call.shop_order_id]),
        headers=htmx_from("http://testserver/followups/"),
    )

    assert response.status_code == 403
    assert response["HX-Retarget"] == "#messages"
    assert response["HX-Reswap"] == "outerHTML"
    assert b'id="messages"' in response.content
    assert b"That was refused" in response.content
    assert not Order.objects.get(pk=call.shop_order_id).claimed_by_id
