"""Settings: stores (write-only API key, Verify against the simulator, calling rules) and users.
The test key must never appear in any page, whatever was submitted."""

import datetime as dt
import io
import re
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from calls.models import Campaign, Store, User
from calls.pipeline.dispatch import claim_due_sends
from tests.calls.test_balances import closed_port_url
from tests.conftest import TEST_API_KEY
from tests.support.orders import create_call
from tests.support.pages import text_of

HTMX = {"HTTP_HX_REQUEST": "true"}
NEW_KEY = "sk-live-00112233445566778899aabbccddeeff"


def assert_no_key(response, *keys: str) -> None:
    """Neither the key, nor its ciphertext, is anywhere in the response."""
    body = response.content.decode()
    for key in (TEST_API_KEY, *keys):
        assert key not in body
    for store in Store.objects.all():
        assert store.api_key_encrypted not in body


def store_data(**overrides: str) -> dict[str, str]:
    return {
        "name": "Karachi Kitchenware",
        "api_key": "",
        "default_voice_id": "102",
        "timezone": "Asia/Karachi",
        "calling_start": "09:00",
        "calling_end": "21:00",
        "provider_retries": "3",
        "retry_delays": "5, 10, 30",
        "low_balance_threshold": "500",
        **overrides,
    }


# --- who may ------------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["agent_user", "manager_user"])
def test_only_admins_may_open_or_change_settings(client, persona, request, store, admin_user):
    client.force_login(request.getfixturevalue(persona))

    for url in (
        reverse("settings"),
        reverse("store_new"),
        reverse("store_edit", args=[store.pk]),
        reverse("user_new"),
        reverse("user_edit", args=[admin_user.pk]),
    ):
        assert client.get(url).status_code == 403, url
    assert (
        client.post(reverse("store_edit", args=[store.pk]), store_data(name="x")).status_code == 403
    )
    assert client.post(reverse("store_verify", args=[store.pk])).status_code == 403
    store.refresh_from_db()
    assert store.name == "Karachi Kitchenware"


# --- the API key is write-only ------------------------------------------------------------------


def test_the_api_key_appears_on_no_settings_page(admin, store, admin_user):
    for url in (
        reverse("settings"),
        reverse("store_new"),
        reverse("store_edit", args=[store.pk]),
        reverse("user_new"),
        reverse("user_edit", args=[admin_user.pk]),
        reverse("overview"),
        reverse("campaign_new"),
    ):
        response = admin.get(url)
        assert response.status_code == 200, url
        assert_no_key(response)


def test_a_failed_store_submit_renders_neither_the_old_nor_the_typed_key(admin, store):
    response = admin.post(
        reverse("store_edit", args=[store.pk]),
        store_data(api_key=NEW_KEY, retry_delays="5,abc"),
    )

    assert response.status_code == 200
    assert_no_key(response, NEW_KEY)
    assert "type it again before saving" in text_of(response)
    store.refresh_from_db()
    assert store.api_key == TEST_API_KEY  # nothing saved


def test_a_failed_new_store_submit_does_not_render_the_typed_key(admin, db):
    response = admin.post(
        reverse("store_new"),
        store_data(name="Lahore Linen", api_key=TEST_API_KEY, timezone="Mars/Olympus"),
    )

    assert response.status_code == 200
    assert_no_key(response)
    assert "'Mars/Olympus' is not a known time zone" in text_of(response)
    assert 'value="Lahore Linen"' in text_of(response)  # the rest is kept
    assert not Store.objects.exists()


def test_the_store_page_sets_what_happens_after_the_last_attempt(admin, store):
    form = text_of(admin.get(reverse("store_edit", args=[store.pk])))
    assert (
        'name="after_last_attempt"' in form and "Cancel it (no answer after every attempt)" in form
    )

    assert "then the follow-up queue if nobody answered" in text_of(admin.get(reverse("settings")))
    admin.post(reverse("store_edit", args=[store.pk]), store_data(after_last_attempt="cancel"))
    store.refresh_from_db()
    assert store.after_last_attempt == Store.AfterLastAttempt.CANCEL
    assert "then cancelled if nobody answered" in text_of(admin.get(reverse("settings")))

    refused = admin.post(
        reverse("store_edit", args=[store.pk]), store_data(after_last_attempt="shred")
    )
    assert refused.status_code == 200
    assert "Select a valid choice. shred is not one of the available choices." in text_of(refused)
    admin.post(reverse("store_edit", args=[store.pk]), store_data())  # left out: kept
    store.refresh_from_db()
    assert store.after_last_attempt == Store.AfterLastAttempt.CANCEL


def test_leaving_the_key_blank_keeps_the_stored_key(admin, store):
    Store.objects.filter(pk=store.pk).update(key_verified_at=timezone.now())

    response = admin.post(
        reverse("store_edit", args=[store.pk]), store_data(default_voice_id="48", paused="on")
    )

    assert response.status_code == 302
    store.refresh_from_db()
    assert store.api_key == TEST_API_KEY
    assert store.key_verified_at is not None
    assert (store.default_voice_id, store.paused) == (48, True)


def test_a_new_key_replaces_the_old_one_and_forgets_its_balance(admin, store, settings):
    settings.ROBOCALL_BASE_URL = closed_port_url()  # unchecked: saved unverified
    Store.objects.filter(pk=store.pk).update(
        key_verified_at=timezone.now(), balance=Decimal("100.00"), balance_username="old"
    )

    admin.post(reverse("store_edit", args=[store.pk]), store_data(api_key=NEW_KEY))

    store.refresh_from_db()
    assert store.api_key == NEW_KEY
    assert store.key_verified_at is None
    assert store.balance is None and store.balance_username == ""


def test_adding_a_store_requires_a_key_and_stores_it_encrypted(admin, provider_url, simulator):
    simulator.add_account(api_key=NEW_KEY, username="lahore", balance="800.00", call_rate="5.50")
    missing = admin.post(reverse("store_new"), store_data(name="Lahore Linen"))
    added = admin.post(reverse("store_new"), store_data(name="Lahore Linen", api_key=NEW_KEY))

    assert "This field is required." in text_of(missing)
    assert added.status_code == 302
    store = Store.objects.get(name="Lahore Linen")
    assert added["Location"] == reverse("store_edit", args=[store.pk])
    assert store.api_key == NEW_KEY
    assert NEW_KEY not in store.api_key_encrypted
    assert_no_key(admin.get(added["Location"]), NEW_KEY)


# --- calling rules ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delays", "message"),
    [
        (
            "5,abc,30",
            "“abc” is not a positive whole number of minutes; write the delays like 5, 10, 30.",
        ),
        ("5,,10", "Give the retry delays in minutes separated by commas, e.g. 5, 10, 30."),
        ("5,-5,10", "“-5” is not a positive whole number of minutes"),
        ("5,0,10", "“0” is not a positive whole number of minutes"),
        ("5,2.5,10", "“2.5” is not a positive whole number of minutes"),
        ("5,10", "Give one delay for each of the 3 retries."),
        ("5,10,30,60", "Give one delay for each of the 3 retries, not 4."),
        ("5,10,1441", "“1441” is more than a day; a retry delay is at most 1,440 minutes."),
    ],
)
def test_bad_retry_delays_are_refused_with_a_clear_message(admin, store, delays, message):
    response = admin.post(reverse("store_edit", args=[store.pk]), store_data(retry_delays=delays))

    assert response.status_code == 200
    assert message in text_of(response)
    assert f'value="{delays}"' in text_of(response)  # what was typed is kept
    store.refresh_from_db()
    assert store.retry_delays == [2, 2, 2]


def test_retry_delays_are_typed_in_minutes_and_stored_in_seconds(admin, store):
    assert 'value="2s, 2s, 2s"' in text_of(admin.get(reverse("store_edit", args=[store.pk])))

    admin.post(
        reverse("store_edit", args=[store.pk]),
        store_data(retry_delays=" 1, 2 ,4,8", provider_retries="4"),
    )

    store.refresh_from_db()
    assert store.retry_delays == [60, 120, 240, 480]
    assert store.provider_retries == 4
    assert 'value="1, 2, 4, 8"' in text_of(admin.get(reverse("store_edit", args=[store.pk])))


def test_a_delay_shown_in_seconds_is_kept_when_the_form_is_saved_again(admin, store):
    admin.post(reverse("store_edit", args=[store.pk]), store_data(retry_delays="2s, 90s, 5"))

    store.refresh_from_db()
    assert store.retry_delays == [2, 90, 300]


def test_the_time_zone_is_picked_from_a_list_with_karachi_first(admin, store):
    page = admin.get(reverse("store_new"))
    options = re.findall(r'<option value="([^"]+)"', page.content.decode())

    assert options[0] == "Asia/Karachi"
    assert "Asia/Dubai" in options and "Europe/London" in options
    assert '<select name="timezone"' in page.content.decode()
    saved = admin.post(reverse("store_edit", args=[store.pk]), store_data(timezone="Asia/Dubai"))
    assert saved.status_code == 302
    store.refresh_from_db()
    assert store.timezone == "Asia/Dubai"


def test_a_negative_low_balance_threshold_is_refused_by_the_form_and_the_database(admin, store):
    response = admin.post(
        reverse("store_edit", args=[store.pk]), store_data(low_balance_threshold="-1")
    )

    assert "Ensure this value is greater than or equal to 0." in text_of(response)
    store.refresh_from_db()
    assert store.low_balance_threshold == Decimal(500)
    with pytest.raises(IntegrityError), transaction.atomic():
        Store.objects.filter(pk=store.pk).update(low_balance_threshold=Decimal("-0.01"))


def test_a_window_that_ends_where_it_starts_means_calling_at_any_hour(admin, store):
    response = admin.post(
        reverse("store_edit", args=[store.pk]),
        store_data(calling_start="00:00", calling_end="00:00"),
    )

    assert response.status_code == 302
    store.refresh_from_db()
    assert store.calls_around_the_clock


def test_calling_hours_and_threshold_are_saved(admin, store):
    admin.post(
        reverse("store_edit", args=[store.pk]),
        store_data(calling_start="10:30", calling_end="20:15", low_balance_threshold="250.50"),
    )

    store.refresh_from_db()
    assert (store.calling_start, store.calling_end) == (dt.time(10, 30), dt.time(20, 15))
    assert store.low_balance_threshold == Decimal("250.50")


# --- a new key is checked with the provider when it is saved --------------------------------------

WRONG_KEY = "sk-wrong-0123456789abcdef0123456789ab"


def test_a_key_the_provider_rejects_is_refused_on_save_with_the_reason(
    admin, store, provider_url, caplog
):
    response = admin.post(reverse("store_edit", args=[store.pk]), store_data(api_key=WRONG_KEY))

    assert response.status_code == 200
    page = text_of(response)
    assert "The provider rejected this key: it does not match a Robo Call account." in page
    assert "Save a key the provider rejects anyway, with the store paused" in page
    assert "422" not in page and "check_balance" not in page  # no raw provider text
    assert_no_key(response, WRONG_KEY)
    assert WRONG_KEY not in caplog.text
    store.refresh_from_db()
    assert store.api_key == TEST_API_KEY and not store.paused


def test_a_rejected_key_can_be_saved_deliberately_and_the_store_is_then_paused(
    admin, store, provider_url
):
    campaign = Campaign.objects.create(store=store, name="May", status=Campaign.Status.RUNNING)
    queued = create_call(
        store=store,
        campaign=campaign,
        order_id="A-1",
        phone="923001234567",
        amount=100,
        voice_id=102,
    )

    response = admin.post(
        reverse("store_edit", args=[store.pk]),
        store_data(api_key=WRONG_KEY, save_rejected_key_paused="on"),
        follow=True,
    )

    assert "saved and paused: the provider rejected its new API key" in text_of(response)
    assert "The provider rejected this key: no call can be placed" in text_of(response)
    assert_no_key(response, WRONG_KEY)
    store.refresh_from_db()
    assert store.api_key == WRONG_KEY
    assert store.paused and store.key_verified_at is None
    assert WRONG_KEY not in store.paused_reason
    assert "rejected" in store.paused_reason
    assert store.pause_kind == Store.PauseKind.KEY_REJECTED
    assert claim_due_sends(timezone.now()) == []  # nothing dials
    Store.objects.filter(pk=store.pk).update(paused=False)
    assert claim_due_sends(timezone.now()) == [queued.pk]  # (it would have, unpaused)


def test_a_key_the_provider_accepts_is_saved_verified_with_its_balance(
    admin, store, provider_url, simulator
):
    simulator.add_account(api_key=NEW_KEY, username="lahore", balance="800.00", call_rate="5.50")

    response = admin.post(
        reverse("store_edit", args=[store.pk]), store_data(api_key=NEW_KEY), follow=True
    )

    assert "the provider accepted its new API key" in text_of(response)
    assert "has not been verified since it was set" not in text_of(response)
    store.refresh_from_db()
    assert store.api_key == NEW_KEY and store.key_verified_at is not None
    assert (store.balance, store.balance_username) == (Decimal("800.00"), "lahore")


def test_a_key_saved_while_the_provider_is_unreachable_is_kept_unverified(admin, store, settings):
    settings.ROBOCALL_BASE_URL = closed_port_url()

    response = admin.post(
        reverse("store_edit", args=[store.pk]), store_data(api_key=NEW_KEY), follow=True
    )

    page = text_of(response)
    assert "the provider could not be reached to check its new API key" in page
    assert "The stored key has not been verified since it was set." in page
    assert_no_key(response, NEW_KEY)
    store.refresh_from_db()
    assert store.api_key == NEW_KEY and store.key_verified_at is None and not store.paused


# --- Verify -------------------------------------------------------------------------------------


def test_verify_says_matched_for_the_stored_key(admin, store, provider_url):
    page = admin.get(reverse("store_edit", args=[store.pk]))
    assert "has not been verified since it was set" in text_of(page)

    response = admin.post(reverse("store_verify", args=[store.pk]), **HTMX)

    assert response.status_code == 200
    assert "Matched: the provider accepts this store's key." in text_of(response)
    # The whole card is redrawn: the stale "not verified" line goes at once.
    assert 'id="verify-card"' in text_of(response)
    assert "The stored key was last verified" in text_of(response)
    assert "has not been verified since it was set" not in text_of(response)
    assert "<html" not in text_of(response)
    assert_no_key(response)
    store.refresh_from_db()
    assert store.key_verified_at is not None


def test_verify_says_not_matched_for_a_key_the_provider_does_not_know(admin, store, provider_url):
    store.api_key = "sk-unknown-1234567890"
    store.save()

    response = admin.post(reverse("store_verify", args=[store.pk]), **HTMX)

    assert "Not matched: the provider rejected this store's key." in text_of(response)
    assert "has not been verified since it was set" in text_of(response)
    # The page's banner, redrawn out of band, names the rejected key at once.
    assert '<div id="provider-state" hx-swap-oob="true">' in text_of(response)
    assert "The provider rejected this key: no call can be placed" in text_of(response)
    assert_no_key(response, "sk-unknown-1234567890")
    store.refresh_from_db()
    assert store.key_verified_at is None
    # The key fixed on the provider's side: the next Verify clears the banner.
    store.api_key = TEST_API_KEY
    store.save()
    fixed = admin.post(reverse("store_verify", args=[store.pk]), **HTMX)
    assert "The provider rejected this key" not in text_of(fixed)


def test_verify_checks_a_typed_key_before_it_is_saved(admin, store, provider_url):
    response = admin.post(reverse("store_verify", args=[store.pk]), {"api_key": NEW_KEY}, **HTMX)

    assert "Not matched: the provider rejected the key you typed." in text_of(response)
    assert_no_key(response, NEW_KEY)
    store.refresh_from_db()
    assert store.api_key == TEST_API_KEY


def test_verify_says_when_the_provider_is_unreachable(admin, store, settings):
    settings.ROBOCALL_BASE_URL = closed_port_url()

    response = admin.post(reverse("store_verify", args=[store.pk]), **HTMX)

    assert response.status_code == 200
    assert (
        "The key could not be checked: The provider is not answering right now. "
        "Try again in a minute." in text_of(response)
    )
    assert "127.0.0.1" not in text_of(response)  # plain words, not the transport error
    assert_no_key(response)


def test_verify_without_htmx_reports_on_the_store_page(admin, store, provider_url):
    response = admin.post(reverse("store_verify", args=[store.pk]), follow=True)

    assert "API key matched: the provider accepts it." in text_of(response)
    assert_no_key(response)


def test_the_store_form_verify_and_add_store_ask_the_provider_one_and_the_same_question(
    admin, store, provider_url, simulator, monkeypatch
):
    def requests() -> tuple[int, int]:
        counts = simulator.stats()["requests"]
        return counts.get("check_balance", 0), counts.get("user_verify", 0)

    def asked(action) -> tuple[int, int]:
        before = requests()
        action()
        after = requests()
        return after[0] - before[0], after[1] - before[1]

    edit, verify = reverse("store_edit", args=[store.pk]), reverse("store_verify", args=[store.pk])
    monkeypatch.setenv("ROBOCALL_API_KEY", WRONG_KEY)
    refused_by_form = asked(lambda: admin.post(edit, store_data(api_key=WRONG_KEY)))
    refused_by_verify = asked(lambda: admin.post(verify, {"api_key": WRONG_KEY}, **HTMX))
    refused_by_command = asked(
        lambda: pytest.raises(
            CommandError, call_command, "add_store", "Other", stdout=io.StringIO()
        )
    )

    # One check_balance each, and no user_verify: the same function asks for all three.
    assert refused_by_form == refused_by_verify == refused_by_command == (1, 0)
    store.refresh_from_db()
    assert store.api_key == TEST_API_KEY
    assert not Store.objects.filter(name="Other").exists()
    monkeypatch.setenv("ROBOCALL_API_KEY", TEST_API_KEY)
    assert asked(lambda: call_command("add_store", "Other", stdout=io.StringIO())) == (1, 0)
    assert Store.objects.get(name="Other").key_verified_at is not None


def test_verify_takes_only_posts(admin, store):
    assert admin.get(reverse("store_verify", args=[store.pk])).status_code == 405


# --- users --------------------------------------------------------------------------------------


def user_data(**overrides: str) -> dict[str, str]:
    return {"username": "zara", "role": "agent", "is_active": "on", "password": "", **overrides}


def test_adding_a_user_sets_role_and_password(admin, client):
    response = admin.post(reverse("user_new"), user_data(password="a-long-passphrase-9"))

    assert response.status_code == 302
    zara = User.objects.get(username="zara")
    assert zara.role == User.Role.AGENT
    assert zara.check_password("a-long-passphrase-9")


def test_a_new_user_needs_a_password_that_passes_the_validators(admin):
    missing = admin.post(reverse("user_new"), user_data())
    weak = admin.post(reverse("user_new"), user_data(password="password"))

    assert "This field is required." in text_of(missing)
    assert "This password is too common." in text_of(weak)
    assert 'value="zara"' in text_of(weak)
    assert 'value="password"' not in weak.content.decode()  # a password is never sent back
    assert not User.objects.filter(username="zara").exists()


def test_a_taken_username_is_refused(admin, agent_user):
    response = admin.post(
        reverse("user_new"), user_data(username="bilal", password="a-long-passphrase-9")
    )

    assert "A user with that username already exists." in text_of(response)


def test_editing_a_user_with_a_blank_password_keeps_it(admin, agent_user):
    response = admin.post(
        reverse("user_edit", args=[agent_user.pk]), user_data(username="bilal", role="manager")
    )

    assert response.status_code == 302
    agent_user.refresh_from_db()
    assert agent_user.role == User.Role.MANAGER
    assert agent_user.check_password("pw-agent-123")


def test_resetting_a_password_and_deactivating_a_user(admin, agent_user):
    admin.post(
        reverse("user_edit", args=[agent_user.pk]),
        {"username": "bilal", "role": "agent", "password": "another-long-phrase-7"},
    )

    agent_user.refresh_from_db()
    assert agent_user.check_password("another-long-phrase-7")
    assert not agent_user.is_active


def test_an_admin_cannot_demote_or_deactivate_themselves(admin, admin_user):
    response = admin.post(
        reverse("user_edit", args=[admin_user.pk]), {"username": "amina", "role": "agent"}
    )

    page = text_of(response)
    assert "You cannot remove your own admin role." in page
    assert "You cannot deactivate your own account." in page
    admin_user.refresh_from_db()
    assert admin_user.role == User.Role.ADMIN and admin_user.is_active


def test_an_admin_changing_their_own_password_stays_signed_in(admin, admin_user):
    admin.post(
        reverse("user_edit", args=[admin_user.pk]),
        user_data(username="amina", role="admin", password="my-new-long-phrase-3"),
    )

    assert admin.get(reverse("settings")).status_code == 200


def test_a_store_robodash_paused_shows_why_on_settings_and_the_overview(client, admin_user, store):
    store.paused = True
    store.pause_kind = Store.PauseKind.KEY_REJECTED  # the pages word the kind
    store.paused_reason = "the provider rejected the API key (HTTP 401); update it, then resume"
    store.save()
    client.force_login(admin_user)
    for url in ("/settings/", "/"):
        page = client.get(url).content.decode()
        assert (
            "The provider rejected this store&#x27;s API key. Update the key, then resume."
            in (page)
            or "The provider rejected this key" in page
        )
        assert "HTTP 401" not in page  # the provider's raw words stay in the logs


# --- what the walk of issue 15 found on the settings pages ----------------------------------------


def test_a_users_last_sign_in_is_in_the_stores_zone_and_says_which(admin, agent_user):
    User.objects.filter(pk=agent_user.pk).update(
        last_login=dt.datetime(2026, 11, 29, 8, 33, tzinfo=dt.UTC)
    )

    page = text_of(admin.get(reverse("settings")))

    row = page[page.index(">bilal</a>") :]
    assert "29 Nov 2026, 13:33 PKT" in row[: row.index("</tr>")]  # Karachi, not 08:33 UTC


def test_the_store_list_shows_retry_delays_in_minutes_as_they_are_typed(admin, store):
    Store.objects.filter(pk=store.pk).update(retry_delays=[300, 600, 1800])

    page = text_of(admin.get(reverse("settings")))

    assert "3 (5, 10, 30 min)" in page
    Store.objects.filter(pk=store.pk).update(retry_delays=[45, 600, 1800])
    assert "3 (45 s, 10 min, 30 min)" in text_of(admin.get(reverse("settings")))


def test_the_store_list_says_round_the_clock_for_a_window_that_ends_where_it_starts(admin, store):
    assert store.calls_around_the_clock  # 00:00-00:00

    page = text_of(admin.get(reverse("settings")))

    assert "round the clock" in page
    assert "00:00–00:00" not in page
    Store.objects.filter(pk=store.pk).update(calling_start=dt.time(9), calling_end=dt.time(21))
    assert "09:00–21:00 Asia/Karachi" in text_of(admin.get(reverse("settings")))


def test_a_store_name_over_100_characters_is_refused_naming_the_limit_not_cut(admin, store):
    form = text_of(admin.get(reverse("store_edit", args=[store.pk])))
    name_input = re.search(r'<input[^>]*name="name"[^>]*>', form)
    assert name_input and "maxlength" not in name_input.group(0)  # no silent cut by the browser

    response = admin.post(reverse("store_edit", args=[store.pk]), store_data(name="K" * 101))

    assert response.status_code == 200
    assert "At most 100 characters: this name has 101." in text_of(response)
    store.refresh_from_db()
    assert store.name == "Karachi Kitchenware"
