"""Campaign pages: list, CSV upload -> preview -> launch (with the balance checked on the
simulator), the single-order form, a campaign's page and its polled progress, pause and resume."""

import csv
import datetime as dt
import io
import re
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from calls.intake import files, uploads
from calls.models import Call, Campaign, Store, Upload, UploadRow
from tests.calls.test_stats import add_calls
from tests.conftest import TEST_API_KEY
from tests.support.pages import text_of

HTMX = {"HTTP_HX_REQUEST": "true"}

GOOD_AND_BAD_CSV = (
    "phone,amount,order_id,store_name\n"
    "0300 1234567,1500,A-1,Karachi Kitchenware\n"  # row 2: valid
    "03001234568,2500.50,A-2,Karachi Kitchenware\n"  # row 3: valid
    "12345,100,A-3,Karachi Kitchenware\n"  # row 4: phone too short
    "03001234569,abc,A-4,Karachi Kitchenware\n"  # row 5: amount not a number
    "03001234570,900,A-1,Karachi Kitchenware\n"  # row 6: repeats row 2
)


def upload(client, store, content: str = GOOD_AND_BAD_CSV, name: str = "May orders"):
    return client.post(
        reverse("campaign_upload"),
        {
            "store": store.pk,
            "campaign_name": name,
            "voice_id": "",
            "file": SimpleUploadedFile("orders.csv", content.encode(), content_type="text/csv"),
        },
    )


# --- who may do what ---------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["admin_user", "agent_user", "manager_user"])
def test_everyone_may_read_the_campaign_list_and_a_campaign(client, persona, request, store):
    campaign = Campaign.objects.create(store=store, name="May orders")
    client.force_login(request.getfixturevalue(persona))

    assert client.get(reverse("campaign_list")).status_code == 200
    assert client.get(reverse("campaign_detail", args=[campaign.pk])).status_code == 200
    assert client.get(reverse("campaign_progress", args=[campaign.pk]), **HTMX).status_code in (
        200,
        286,
    )


@pytest.mark.parametrize("persona", ["agent_user", "manager_user"])
def test_only_admins_may_create_launch_pause_or_resume(client, persona, request, store):
    campaign = Campaign.objects.create(store=store, name="May orders")
    client.force_login(request.getfixturevalue(persona))

    assert client.get(reverse("campaign_new")).status_code == 403
    assert upload(client, store).status_code == 403
    assert client.post(reverse("campaign_single_order"), {}).status_code == 403
    assert client.get(reverse("campaign_launch", args=[campaign.pk])).status_code == 403
    assert client.post(reverse("campaign_launch", args=[campaign.pk])).status_code == 403
    assert client.post(reverse("campaign_pause", args=[campaign.pk])).status_code == 403
    assert client.post(reverse("campaign_resume", args=[campaign.pk])).status_code == 403
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING
    assert not Call.objects.exists()


def test_agents_see_no_new_campaign_link(client, agent_user, store):
    client.force_login(agent_user)

    assert reverse("campaign_new") not in text_of(client.get(reverse("campaign_list")))


# --- upload, preview, launch -------------------------------------------------------------------


def test_an_upload_previews_valid_and_rejected_rows_without_importing(admin, store, provider_url):
    response = upload(admin, store)

    campaign = Campaign.objects.get(name="May orders")
    assert response.status_code == 302
    assert response["Location"] == reverse("campaign_launch", args=[campaign.pk])
    preview = admin.get(response["Location"])
    page = text_of(preview)
    assert preview.status_code == 200
    assert "Preview of orders.csv" in page
    assert preview.context["upload"].valid_rows == 2
    # Rejected rows with their row numbers and reasons, and the duplicate skipped.
    assert "<td class=\"num\">4</td><td>phone '12345' is too short" in page
    assert "amount 'abc' is not a number" in page
    assert "repeats row 2" in page
    # The cost against the balance, fresh from the provider: 2 calls x Rs 5.50 x 2 pulses.
    assert "Rs 22.00" in page
    assert "Rs 5,000.00" in page
    assert "Launch 2 calls" in page
    # Nothing imported yet; the campaign waits as a draft; its rows wait in the database.
    assert not Call.objects.exists()
    assert campaign.status == Campaign.Status.DRAFT
    staged = Upload.objects.get(campaign=campaign)
    assert sorted(staged.rows.values_list("row", "kind")) == [
        (2, "valid"),
        (3, "valid"),
        (4, "rejected"),
        (5, "rejected"),
        (6, "duplicate"),
    ]


def test_launching_imports_the_valid_rows_and_runs_the_campaign(
    admin, store, provider_url, django_capture_on_commit_callbacks
):
    upload(admin, store)
    campaign = Campaign.objects.get(name="May orders")

    with django_capture_on_commit_callbacks() as wakes:
        response = admin.post(reverse("campaign_launch", args=[campaign.pk]))

    assert response.status_code == 302
    assert response["Location"] == reverse("campaign_detail", args=[campaign.pk])
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING
    calls = Call.objects.filter(campaign=campaign).order_by("order_id")
    assert [(c.order_id, c.phone, c.amount, c.state) for c in calls] == [
        ("A-1", "923001234567", Decimal("1500.00"), "queued"),
        ("A-2", "923001234568", Decimal("2500.50"), "queued"),
    ]
    assert wakes, "the dispatcher is woken once the import commits"
    # The upload is launched and its staged rows are gone; its counts stay.
    launched = Upload.objects.get(campaign=campaign)
    assert (launched.status, launched.imported_rows) == (Upload.Status.LAUNCHED, 2)
    assert not UploadRow.objects.exists()
    page = text_of(admin.get(response["Location"]))
    assert (
        "Campaign May orders launched, 2 calls queued, 2 rows rejected, "
        "1 duplicate in this file skipped." in page
    )


def test_launching_says_how_many_orders_the_stores_rules_skipped(admin, store, provider_url):
    Store.objects.filter(pk=store.pk).update(call_min_amount=Decimal(2000))
    upload(admin, store)
    campaign = Campaign.objects.get(name="May orders")

    response = admin.post(reverse("campaign_launch", args=[campaign.pk]), follow=True)

    assert list(Call.objects.values_list("order_id", flat=True)) == ["A-2"]
    assert (
        "Campaign May orders launched, 1 call queued, 1 skipped by the store's rules, "
        "2 rows rejected" in text_of(response)
    )


def test_uploading_into_a_paused_campaign_imports_the_orders_but_leaves_it_paused(
    admin, store, provider_url
):
    upload(admin, store)
    campaign = Campaign.objects.get(name="May orders")
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.PAUSED)

    response = admin.post(reverse("campaign_launch", args=[campaign.pk]), follow=True)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED
    assert Call.objects.filter(campaign=campaign, state=Call.State.QUEUED).count() == 2
    assert "is paused: the new calls wait until you resume it" in text_of(response)


def test_a_low_balance_blocks_the_launch_and_imports_nothing(admin, store, provider_url, simulator):
    simulator.add_account(
        api_key=TEST_API_KEY, username="teststore", balance="3.00", call_rate="5.50"
    )
    upload(admin, store)
    campaign = Campaign.objects.get(name="May orders")

    response = admin.post(reverse("campaign_launch", args=[campaign.pk]))

    assert response.status_code == 200
    page = text_of(response)
    assert (
        "Cannot launch: Karachi Kitchenware's balance Rs 3.00 is below the store's "
        "low-balance threshold of Rs 500.00" in page
    )
    assert "Top up the account, then launch the campaign." in page
    assert "Nothing was imported." in page
    assert not Call.objects.exists()
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT
    # The upload still waits: after a top-up the same upload launches.
    assert Upload.objects.get(campaign=campaign).status == Upload.Status.PREVIEWED
    simulator.add_account(
        api_key=TEST_API_KEY, username="teststore", balance="5000.00", call_rate="5.50"
    )
    assert admin.post(reverse("campaign_launch", args=[campaign.pk])).status_code == 302
    assert Call.objects.filter(campaign=campaign).count() == 2


def test_a_file_without_the_required_columns_is_refused_at_upload(admin, store, provider_url):
    response = upload(admin, store, "telephone,total\n03001234567,1500\n")

    assert response.status_code == 200
    page = text_of(response)
    assert "The header is missing the columns phone, amount, order_id, store_name" in page
    assert not Campaign.objects.exists()
    assert not Call.objects.exists()


def test_a_file_with_no_valid_rows_cannot_be_launched(admin, store, provider_url):
    upload(admin, store, "phone,amount,order_id,store_name\n123,1500,A-1,Shop\n")
    campaign = Campaign.objects.get(name="May orders")

    response = admin.post(reverse("campaign_launch", args=[campaign.pk]))

    assert response.status_code == 200
    assert "The file has no valid new orders" in text_of(response)
    assert not Call.objects.exists()


def test_discarding_an_upload_removes_its_rows_and_the_empty_draft(admin, store, provider_url):
    upload(admin, store)
    campaign = Campaign.objects.get(name="May orders")

    response = admin.post(reverse("campaign_launch", args=[campaign.pk]), {"action": "discard"})

    assert response.status_code == 302
    assert not Campaign.objects.filter(pk=campaign.pk).exists()
    assert not Upload.objects.exists()
    assert not UploadRow.objects.exists()


def test_uploading_orders_the_store_already_has_calls_none_of_them(admin, store, provider_url):
    upload(admin, store)
    campaign = Campaign.objects.get(name="May orders")
    admin.post(reverse("campaign_launch", args=[campaign.pk]))

    response = upload(admin, store)
    preview = admin.get(response["Location"])

    assert preview.context["upload"].valid_rows == 0
    assert "Already known (2)" in text_of(preview)
    assert "already known (waiting, since " in text_of(preview)


# --- the single-order form ---------------------------------------------------------------------


def single_order(client, store, *, follow=False, **overrides):
    data = {
        "store": store.pk,
        "campaign_name": "Single orders",
        "phone": "0300 1234567",
        "amount": "1500",
        "order_id": "S-1",
        "store_name": "",
        "voice_id": "",
        **overrides,
    }
    return client.post(reverse("campaign_single_order"), data, follow=follow)


def test_a_single_order_with_a_bad_phone_shows_the_field_error_and_keeps_the_input(admin, store):
    response = single_order(admin, store, phone="0300 12", order_id="S-77")

    assert response.status_code == 200
    form = response.context["order_form"]
    assert form.errors["phone"] == [
        "Phone '0300 12' is too short for a mobile number (6 digits with the 0; 11 expected, "
        "e.g. 0300 1234567)."
    ]
    page = text_of(response)
    assert 'value="S-77"' in page  # nothing typed is lost
    assert not Call.objects.exists()
    assert not Campaign.objects.exists()


def test_a_store_name_read_out_over_200_characters_is_refused_naming_the_limit(admin, store):
    form = text_of(admin.get(reverse("campaign_new")))
    name_input = re.search(r'<input[^>]*name="store_name"[^>]*>', form)
    assert name_input and "maxlength" not in name_input.group(0)  # no silent cut by the browser

    response = single_order(admin, store, store_name="K" * 201)

    assert response.context["order_form"].errors["store_name"] == [
        "At most 200 characters: this name has 201."
    ]
    assert not Call.objects.exists()


def test_a_single_order_is_queued_in_its_campaign(admin, store, provider_url):
    response = single_order(admin, store, amount="2,500.50")

    call = Call.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("campaign_detail", args=[call.campaign_id])
    assert (call.phone, call.amount, call.order_id, call.text1, call.voice_id) == (
        "923001234567",
        Decimal("2500.50"),
        "S-1",
        "Karachi Kitchenware",  # blank store name: the store's own
        102,
    )
    assert call.campaign.name == "Single orders"
    assert call.campaign.status == Campaign.Status.RUNNING


def test_an_order_the_store_already_has_is_refused_on_the_order_field(admin, store, provider_url):
    single_order(admin, store)

    response = single_order(admin, store, phone="03001234599")

    assert response.status_code == 200
    assert "is already known" in response.context["order_form"].errors["order_id"][0]
    assert Call.objects.count() == 1


def test_a_single_order_is_blocked_by_a_low_balance(admin, store, provider_url, simulator):
    simulator.add_account(
        api_key=TEST_API_KEY, username="teststore", balance="10.00", call_rate="5.50"
    )

    response = single_order(admin, store)

    assert response.status_code == 200
    assert "Cannot launch" in text_of(response)
    assert not Call.objects.exists()


# --- a campaign's page, progress, pause and resume ----------------------------------------------


@pytest.fixture
def running(store) -> Campaign:
    return Campaign.objects.create(store=store, name="May orders")


def test_the_campaign_page_shows_outcomes_rates_and_charges(client, manager_user, running):
    add_calls(running, 3, outcome=Call.Outcome.CONFIRMED, charges="11.00")
    add_calls(running, 1, outcome=Call.Outcome.CANCELLED, charges="5.50")
    add_calls(running, 2, outcome=Call.Outcome.UNREACHABLE)
    add_calls(running, 1, outcome=Call.Outcome.WITHDRAWN)
    add_calls(running, 1, state=Call.State.IN_PROGRESS)
    client.force_login(manager_user)

    response = client.get(reverse("campaign_detail", args=[running.pk]))

    page = text_of(response)
    figures = response.context["figures"]
    assert figures.answer_rate == Decimal("66.7")  # 4 of 6
    assert figures.confirmation_rate == Decimal("75.0")
    assert "Rs 38.50" in page  # total charges
    assert "Rs 12.83" in page  # per confirmed order
    assert "7 of 8 calls final (87%)" in page
    for label in (
        "Confirmed (pressed 1)",
        "Cancelled (pressed 2)",
        "Callback requested (pressed 3)",
        "Answered, no input",
        "Unreachable",
        "Failed",
        "Needs review",
        "Withdrawn",
    ):
        assert label in page
    assert 'hx-trigger="every 2s"' in page  # a call is still with the provider
    assert "Pause" not in page  # managers read, admins act


def test_progress_keeps_polling_while_calls_are_queued_or_in_flight(admin, running):
    add_calls(running, 2, state=Call.State.QUEUED)

    response = admin.get(reverse("campaign_progress", args=[running.pk]), **HTMX)

    assert response.status_code == 200
    assert f'hx-get="/campaigns/{running.pk}/progress/"' in text_of(response)
    assert "<html" not in text_of(response)


def test_progress_stops_polling_with_286_once_every_call_is_final(admin, running):
    add_calls(running, 2, outcome=Call.Outcome.CONFIRMED)

    response = admin.get(reverse("campaign_progress", args=[running.pk]), **HTMX)

    assert response.status_code == 286
    page = text_of(response)
    assert "2 of 2 calls final (100%)" in page
    assert "hx-trigger" not in page


def test_progress_of_a_paused_campaign_stops_once_nothing_is_with_the_provider(admin, running):
    add_calls(running, 2, state=Call.State.QUEUED)
    running.status = Campaign.Status.PAUSED
    running.save()

    response = admin.get(reverse("campaign_progress", args=[running.pk]), **HTMX)

    assert response.status_code == 286


def test_progress_without_htmx_goes_to_the_campaign_page(admin, running):
    response = admin.get(reverse("campaign_progress", args=[running.pk]))

    assert response.status_code == 302
    assert response["Location"] == reverse("campaign_detail", args=[running.pk])


def test_pausing_and_resuming_a_campaign(admin, running, django_capture_on_commit_callbacks):
    paused = admin.post(reverse("campaign_pause", args=[running.pk]), follow=True)
    running.refresh_from_db()
    assert running.status == Campaign.Status.PAUSED
    assert "paused: queued calls wait" in text_of(paused)

    with django_capture_on_commit_callbacks() as wakes:
        resumed = admin.post(reverse("campaign_resume", args=[running.pk]), follow=True)

    running.refresh_from_db()
    assert running.status == Campaign.Status.RUNNING
    assert "Campaign May orders resumed." in text_of(resumed)
    assert len(wakes) == 1  # the dispatcher is woken on resume


def test_a_draft_cannot_be_resumed_and_a_paused_one_cannot_be_paused(admin, store):
    draft = Campaign.objects.create(store=store, name="Draft", status=Campaign.Status.DRAFT)
    paused = Campaign.objects.create(store=store, name="Paused", status=Campaign.Status.PAUSED)

    resumed = admin.post(reverse("campaign_resume", args=[draft.pk]), follow=True)
    repaused = admin.post(reverse("campaign_pause", args=[paused.pk]), follow=True)

    assert "was never launched: launch it instead" in text_of(resumed)
    assert "is paused, not running: nothing to pause" in text_of(repaused)
    draft.refresh_from_db()
    assert draft.status == Campaign.Status.DRAFT


def test_pause_and_resume_take_only_posts(admin, running):
    assert admin.get(reverse("campaign_pause", args=[running.pk])).status_code == 405
    assert admin.get(reverse("campaign_resume", args=[running.pk])).status_code == 405


def test_the_list_shows_each_campaigns_progress_and_figures(client, agent_user, store):
    first = Campaign.objects.create(store=store, name="First")
    second = Campaign.objects.create(store=store, name="Second", status=Campaign.Status.PAUSED)
    add_calls(first, 3, outcome=Call.Outcome.CONFIRMED, charges="5.50")
    add_calls(first, 1, state=Call.State.QUEUED)
    add_calls(second, 2, outcome=Call.Outcome.CANCELLED)
    add_calls(second, 1, state=Call.State.QUEUED)
    client.force_login(agent_user)

    response = client.get(reverse("campaign_list"))

    rows = {campaign.name: figures for campaign, figures, _finished in response.context["rows"]}
    assert (rows["First"].calls, rows["First"].confirmed, rows["First"].progress_percent) == (
        4,
        3,
        75,
    )
    assert rows["First"].charges == Decimal("16.50")
    assert rows["Second"].cancel_rate == Decimal("100.0")
    assert "Paused" in text_of(response)


def _list_row(response, name: str) -> str:
    """The campaign list's row of the campaign `name`, as text with its markup."""
    page = text_of(response)
    row = page[page.index(f">{name}</a>") :]
    return row[: row.index("</tr>")]


def test_a_campaign_whose_calls_are_all_final_says_finished_and_when(client, agent_user, store):
    done = Campaign.objects.create(store=store, name="Done")
    busy = Campaign.objects.create(store=store, name="Busy")
    ended = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)  # 14:30 in Karachi
    add_calls(done, 2, outcome=Call.Outcome.CONFIRMED, created_at=ended - dt.timedelta(hours=1))
    add_calls(done, 1, outcome=Call.Outcome.UNREACHABLE, created_at=ended)
    add_calls(busy, 1, outcome=Call.Outcome.CONFIRMED)
    add_calls(busy, 1, state=Call.State.IN_PROGRESS)
    client.force_login(agent_user)

    listed = client.get(reverse("campaign_list"))
    page = text_of(client.get(reverse("campaign_detail", args=[done.pk])))

    finished_row = _list_row(listed, "Done")
    assert "Finished" in finished_row and "1 Dec 2026, 14:30 PKT" in finished_row
    assert "Running" not in finished_row
    assert "Running" in _list_row(listed, "Busy") and "1 call in flight" in _list_row(
        listed, "Busy"
    )
    assert "Finished 1 Dec 2026, 14:30 PKT: every call is final." in page
    assert "Running" not in page[page.index("<h1>") : page.index("</h1>")]


def test_a_finished_campaign_is_worked_out_not_stored_and_runs_again_with_a_new_order(
    client, agent_user, store
):
    campaign = Campaign.objects.create(store=store, name="Done")
    add_calls(campaign, 1, outcome=Call.Outcome.CONFIRMED)
    client.force_login(agent_user)
    assert "Finished" in _list_row(client.get(reverse("campaign_list")), "Done")

    add_calls(campaign, 1, state=Call.State.QUEUED)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING
    row = _list_row(client.get(reverse("campaign_list")), "Done")
    assert "Running" in row and "Finished" not in row


def test_a_shops_standing_campaign_says_ongoing_not_finished(client, agent_user, store):
    shopify = Campaign.objects.create(store=store, name="Shopify orders")
    api = Campaign.objects.create(store=store, name="API orders")
    add_calls(shopify, 2, outcome=Call.Outcome.CONFIRMED)
    client.force_login(agent_user)

    listed = client.get(reverse("campaign_list"))
    page = text_of(client.get(reverse("campaign_detail", args=[shopify.pk])))

    for name in ("Shopify orders", "API orders"):
        row = _list_row(listed, name)
        assert "ongoing" in row and "Finished" not in row and "100%" not in row
    assert "Ongoing: the store's orders join this campaign as they come." in page
    assert "Finished" not in page
    assert api.takes_intake and not Campaign(name="May orders").takes_intake


def test_the_lists_confirmed_counts_decisions_as_the_confirmation_rate_does(
    client, agent_user, store
):
    campaign = Campaign.objects.create(store=store, name="Decided")
    add_calls(campaign, 2, outcome=Call.Outcome.CONFIRMED)
    (by_hand,) = add_calls(campaign, 1, outcome=Call.Outcome.UNREACHABLE)
    (overruled,) = add_calls(campaign, 1, outcome=Call.Outcome.CONFIRMED)
    Call.objects.filter(pk=by_hand.pk).update(hand_decision=Call.Outcome.CONFIRMED)
    Call.objects.filter(pk=overruled.pk).update(hand_decision=Call.Outcome.CANCELLED)
    client.force_login(agent_user)

    response = client.get(reverse("campaign_list"))

    ((_campaign, figures, _finished),) = response.context["rows"]
    assert figures.decided_confirmed == 3  # two key presses and one by hand; one overruled
    assert figures.confirmation_rate == Decimal("75.0")  # 3 of 4 answered or decided
    cells = re.findall(r'<td class="num">([^<]*)</td>', _list_row(response, "Decided"))
    assert cells[:2] == ["4", "3"]  # calls, confirmed


def _queries_for(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


def test_the_campaign_page_and_list_run_as_many_queries_for_1000_calls_as_for_10(admin, running):
    add_calls(running, 10, outcome=Call.Outcome.CONFIRMED, charges="5.50")
    detail = reverse("campaign_detail", args=[running.pk])
    with_10 = (_queries_for(admin, detail), _queries_for(admin, reverse("campaign_list")))

    for outcome in (Call.Outcome.CANCELLED, Call.Outcome.NO_INPUT, Call.Outcome.UNREACHABLE):
        add_calls(running, 330, outcome=outcome, charges="1.10")
    assert Call.objects.count() == 1000
    with_1000 = (_queries_for(admin, detail), _queries_for(admin, reverse("campaign_list")))

    assert with_1000 == with_10


def test_launching_a_draft_releases_the_calls_waiting_in_it(admin, store, provider_url):
    # As `import_calls` leaves a campaign it imported while the balance was low.
    draft = Campaign.objects.create(store=store, name="Held", status=Campaign.Status.DRAFT)
    add_calls(draft, 2, state=Call.State.QUEUED)

    preview = admin.get(reverse("campaign_launch", args=[draft.pk]))
    launched = admin.post(reverse("campaign_launch", args=[draft.pk]), follow=True)

    assert "Launch 2 calls" in text_of(preview)
    draft.refresh_from_db()
    assert draft.status == Campaign.Status.RUNNING
    assert "Campaign Held launched, 2 waiting calls released." in text_of(launched)


# --- uploads in the database: cap, control characters, pages, one reading, one launch ---------


def many_rows(n: int, *, bad: int = 0) -> str:
    """`n` valid orders to distinct mobiles, then `bad` rows with a landline."""
    lines = ["phone,amount,order_id,store_name"]
    lines += [f"0300{i:07d},{100 + i},BULK-{i:05d},Karachi Kitchenware" for i in range(n)]
    lines += [f"021-{i:07d},100,BAD-{i:05d},Karachi Kitchenware" for i in range(bad)]
    return "\n".join(lines) + "\n"


def test_a_file_over_the_row_cap_is_refused_naming_the_limit_and_nothing_is_stored(
    admin, store, settings
):
    settings.ROBODASH_UPLOAD_MAX_ROWS = 5

    refused = upload(admin, store, many_rows(6))
    accepted = upload(admin, store, many_rows(5), name="Five")

    assert refused.status_code == 200
    assert (
        "The file has more than 5 rows, the most one upload may have: split it into files of "
        "up to 5 rows; nothing was stored." in text_of(refused)
    )
    assert list(Campaign.objects.values_list("name", flat=True)) == ["Five"]
    assert accepted.status_code == 302
    assert Upload.objects.get().valid_rows == 5
    assert UploadRow.objects.count() == 5


def test_a_nul_or_control_character_in_a_cell_is_a_row_reason_and_the_rest_launches(
    admin, store, provider_url
):
    content = (
        "phone,amount,order_id,store_name\n"
        "03001234567,1500,A\x00-1,Karachi Kitchenware\n"
        "03001234568,1500,A-2,Karachi\x07Kitchenware\n"
        "03001234569,1500,A-3,Karachi Kitchenware\n"
    )
    response = upload(admin, store, content)
    campaign = Campaign.objects.get(name="May orders")

    preview = admin.get(response["Location"])
    launched = admin.post(reverse("campaign_launch", args=[campaign.pk]), follow=True)

    page = text_of(preview)
    assert preview.status_code == 200
    assert "order_id contains a control character (U+0000, NUL) at position 2" in page
    assert "store_name contains a control character (U+0007) at position 8" in page
    assert "\x00" not in preview.content.decode()
    assert launched.status_code == 200
    assert list(Call.objects.values_list("order_id", flat=True)) == ["A-3"]


def test_the_preview_pages_through_every_valid_row(admin, store, provider_url):
    response = upload(admin, store, many_rows(120))
    seen = []
    url = response["Location"]
    for page_number in (1, 2, 3):
        preview = admin.get(url, {"page": page_number})
        seen += [row.order_id for row in preview.context["valid_page"]]
        assert f"Page {page_number} of 3" in text_of(preview)

    assert seen == [f"BULK-{i:05d}" for i in range(120)]
    assert "Valid rows (120)" in text_of(preview)


def test_the_rejected_rows_csv_has_every_rejected_row_beyond_those_shown(
    admin, store, provider_url
):
    response = upload(admin, store, many_rows(2, bad=350))
    campaign = Campaign.objects.get(name="May orders")
    preview = text_of(admin.get(response["Location"]))

    download = admin.get(reverse("campaign_upload_rejected", args=[campaign.pk]))
    body = b"".join(download.streaming_content)
    assert body.startswith(b"\xef\xbb\xbf")  # the BOM, as on every export
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))

    assert "… and 50 more rejected rows" in preview
    assert "Download all 350 rejected rows (CSV)" in preview
    assert download["Content-Type"] == "text/csv; charset=utf-8"
    assert "no-store" in download["Cache-Control"]
    assert rows[0] == ["row", "reason"]
    assert [int(row[0]) for row in rows[1:]] == list(range(4, 354))
    assert rows[1][1] == "phone '021-0000000' is a landline, not a mobile number"


def test_a_file_is_read_once_from_upload_to_launch(admin, store, provider_url, monkeypatch):
    readings = []
    read_rows = files._csv_rows

    def counted(file, *how):
        readings.append(file)
        return read_rows(file, *how)

    monkeypatch.setattr(files, "_csv_rows", counted)
    response = upload(admin, store, many_rows(60))
    campaign = Campaign.objects.get(name="May orders")
    admin.get(response["Location"])
    admin.get(response["Location"], {"page": 2})
    admin.post(reverse("campaign_launch", args=[campaign.pk]))

    assert len(readings) == 1
    assert campaign.calls.count() == 60


def test_a_second_launch_of_the_same_upload_is_refused(admin, store, provider_url):
    response = upload(admin, store)
    campaign = Campaign.objects.get(name="May orders")
    staged = Upload.objects.get()
    form = {"upload": staged.pk}

    first = admin.post(reverse("campaign_launch", args=[campaign.pk]), form)
    second = admin.post(reverse("campaign_launch", args=[campaign.pk]), form, follow=True)

    assert first.status_code == 302
    assert "That upload was already launched or replaced: it is not launched again." in (
        text_of(second)
    )
    assert campaign.calls.count() == 2
    # The claim itself: a second claim of the same upload loses.
    assert not uploads.claim_upload(staged)
    assert response.status_code == 302


def test_back_after_a_launch_shows_the_campaign_not_nothing_to_launch(admin, store, provider_url):
    response = upload(admin, store)
    campaign = Campaign.objects.get(name="May orders")
    admin.post(reverse("campaign_launch", args=[campaign.pk]))

    back = admin.get(response["Location"], follow=True)

    assert back.redirect_chain == [(reverse("campaign_detail", args=[campaign.pk]), 302)]
    assert "Nothing to launch" not in text_of(back)
    assert "0 of 2 calls final" in text_of(back)


def test_a_large_launch_is_handed_to_a_worker_after_the_claim_commits(
    admin, store, provider_url, settings, django_capture_on_commit_callbacks
):
    settings.ROBODASH_LAUNCH_IN_REQUEST_ROWS = 10
    upload(admin, store, many_rows(11))
    campaign = Campaign.objects.get(name="May orders")

    with django_capture_on_commit_callbacks() as enqueued:
        response = admin.post(reverse("campaign_launch", args=[campaign.pk]), follow=True)

    assert len(enqueued) == 1
    assert not Call.objects.exists()  # the worker adds them
    assert Upload.objects.get().status == Upload.Status.LAUNCHING
    page = text_of(response)
    assert "Campaign May orders is launching: 11 orders are being queued" in page
    assert "0 of 11 rows queued (0%)" in page
    assert 'hx-get="{}"'.format(reverse("campaign_progress", args=[campaign.pk])) in (
        response.content.decode()
    )


def test_abandoned_previews_are_swept_after_a_day_with_their_rows(admin, store, provider_url):
    upload(admin, store, name="Old")
    Upload.objects.update(created_at=timezone.now() - dt.timedelta(days=1, minutes=1))

    upload(admin, store, name="New")

    assert list(Upload.objects.values_list("campaign__name", flat=True)) == ["New"]
    assert UploadRow.objects.filter(upload__campaign__name="Old").count() == 0
