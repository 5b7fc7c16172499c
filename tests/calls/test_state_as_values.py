"""State is a value, words are for people: a launch check's warning is a flag, a store's pause
is a kind, and both are worded when a page is drawn, in the reader's language. Nothing decides
by reading the words back, so a translated page still warns and still names the pause."""

from __future__ import annotations

import pytest
from django.contrib import messages
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse
from django.utils import translation

from calls import launches
from calls.models import Call, Campaign, Store
from calls.pipeline import dispatch
from calls.pipeline.balances import LaunchCheck, check_launch, provider_states
from calls.templatetags.present import pause_reason
from tests.calls.test_balances import closed_port_url
from tests.calls.test_pages_campaigns import single_order
from tests.calls.test_stats import add_calls
from tests.support.migrations import migrate_to
from tests.support.pages import text_of

pytestmark = pytest.mark.django_db

# The start of the unchecked-launch warning in each language (locale/ur has the sentence).
UNCHECKED_WARNING = {
    "en": "Warning: the provider could not be asked for Karachi Kitchenware's balance",
    "ur": "انتباہ: پرووائیڈر سے Karachi Kitchenware کا بیلنس نہیں پوچھا جا سکا",
}
# Why a store is paused, on the settings page and on the overview (which shows a rejected key
# as its alert, whoever found it), in each language.
KEY_REJECTED_WORDS = {
    "/settings/": {
        "en": "The provider rejected this store's API key. Update the key, then resume.",
        "ur": "پرووائیڈر نے اس اسٹور کی API key مسترد کر دی۔",
    },
    "/": {
        "en": "The provider rejected this key: calls cannot be placed until",
        "ur": "پرووائیڈر نے یہ key مسترد کر دی: جب تک اسٹور کی API key",
    },
}
_UNUSABLE = {
    "en": "robodash could not use the provider; support can see the detail.",
    "ur": "robodash پرووائیڈر کو استعمال نہیں کر سکا؛ سپورٹ تفصیل دیکھ سکتی ہے۔",
}
PROVIDER_UNUSABLE_WORDS = {"/settings/": _UNUSABLE, "/": _UNUSABLE}


def reads_in(user, language: str) -> None:
    user.language = language
    user.save(update_fields=["language"])


def warnings_shown(response) -> list[str]:
    return [str(m) for m in response.context["messages"] if m.level == messages.WARNING]


# --- a launch check is values; its warning is a flag -------------------------------------------


def test_a_launch_check_is_a_code_and_a_flag_worded_in_the_language_it_is_read_in(store, settings):
    settings.ROBOCALL_BASE_URL = closed_port_url()

    check = check_launch(store, 100)

    assert (check.code, check.ok, check.warning) == (LaunchCheck.UNCHECKED, True, True)
    for language, words in UNCHECKED_WARNING.items():
        with translation.override(language):
            assert check.message.startswith(words)


def test_a_launch_the_balance_covers_or_blocks_is_no_warning(store, provider_url, simulator):
    covered = check_launch(store, 1)
    simulator.add_account(
        api_key=store.api_key, username="teststore", balance="400.00", call_rate="5.50"
    )
    short = check_launch(store, 1)

    assert (covered.code, covered.ok, covered.warning) == (LaunchCheck.COVERED, True, False)
    assert (short.code, short.ok, short.warning) == (LaunchCheck.BALANCE_SHORT, False, False)
    assert short.below_threshold and not short.below_cost


@pytest.mark.parametrize("language", ["en", "ur"])
def test_a_launch_with_no_balance_known_warns_and_goes_ahead_in_either_language(
    admin, admin_user, store, settings, language
):
    reads_in(admin_user, language)
    settings.ROBOCALL_BASE_URL = closed_port_url()
    draft = Campaign.objects.create(store=store, name="Held", status=Campaign.Status.DRAFT)
    add_calls(draft, 2, state=Call.State.QUEUED)

    response = admin.post(reverse("campaign_launch", args=[draft.pk]), follow=True)

    draft.refresh_from_db()
    assert draft.status == Campaign.Status.RUNNING
    shown = warnings_shown(response)
    assert len(shown) == 1 and shown[0].startswith(UNCHECKED_WARNING[language])
    assert UNCHECKED_WARNING[language] in text_of(response)


@pytest.mark.parametrize("language", ["en", "ur"])
def test_a_single_order_with_no_balance_known_warns_and_is_queued_in_either_language(
    admin, admin_user, store, settings, language
):
    reads_in(admin_user, language)
    settings.ROBOCALL_BASE_URL = closed_port_url()

    response = single_order(admin, store, follow=True)

    assert Call.objects.filter(order_id="S-1", state=Call.State.QUEUED).count() == 1
    shown = warnings_shown(response)
    assert len(shown) == 1 and shown[0].startswith(UNCHECKED_WARNING[language])


def test_a_covered_single_order_shows_no_warning(admin, store, provider_url):
    response = single_order(admin, store)

    assert response.status_code == 302
    assert warnings_shown(admin.get(response["Location"])) == []


def test_a_launch_counts_the_calls_waiting_in_a_draft_with_the_new_ones(store, provider_url):
    draft = Campaign.objects.create(store=store, name="Held", status=Campaign.Status.DRAFT)
    add_calls(draft, 3, state=Call.State.QUEUED)
    running = Campaign.objects.create(store=store, name="Live")
    add_calls(running, 4, state=Call.State.QUEUED)

    assert launches.waiting_draft_calls(draft) == 3
    assert launches.waiting_draft_calls(running) == 0
    assert launches.check(draft, 10).n_calls == 13
    assert launches.check(running, 10).n_calls == 10


# --- a store's pause is a kind, worded on the page ---------------------------------------------


def test_a_rejected_key_pauses_the_store_with_that_kind_and_the_detail_for_support(store):
    dispatch.pause_store(
        store, Store.PauseKind.KEY_REJECTED, f"calls: HTTP 401 for key {store.api_key}"
    )

    store.refresh_from_db()
    assert store.paused and store.pause_kind == Store.PauseKind.KEY_REJECTED
    assert store.api_key not in store.paused_reason  # the detail is redacted
    assert provider_states([store]) == {store.pk: "rejected"}
    store.paused = False
    store.save()
    store.refresh_from_db()
    assert (store.pause_kind, store.paused_reason) == ("", "")


def test_a_store_already_paused_keeps_its_first_kind(store):
    dispatch.pause_store(store, Store.PauseKind.PROVIDER_UNUSABLE, "InvalidToken: ")
    dispatch.pause_store(store, Store.PauseKind.KEY_REJECTED, "rejected the API key")

    store.refresh_from_db()
    assert store.pause_kind == Store.PauseKind.PROVIDER_UNUSABLE


@pytest.mark.parametrize("language", ["en", "ur"])
@pytest.mark.parametrize(
    ("kind", "words"),
    [
        (Store.PauseKind.KEY_REJECTED, KEY_REJECTED_WORDS),
        (Store.PauseKind.PROVIDER_UNUSABLE, PROVIDER_UNUSABLE_WORDS),
    ],
)
def test_settings_and_the_overview_say_why_a_store_is_paused_in_the_readers_language(
    client, admin_user, store, language, kind, words
):
    store.paused = True
    store.pause_kind = kind
    # The detail's words say something else: the kind decides what the page says.
    store.paused_reason = "the provider rejected the API key (HTTP 401)"
    if kind == Store.PauseKind.KEY_REJECTED:
        store.paused_reason = "cannot call the provider: InvalidToken"
    store.save()
    reads_in(admin_user, language)
    client.force_login(admin_user)

    for url in ("/settings/", "/"):
        page = text_of(client.get(url))
        assert words[url][language] in page
        assert "HTTP 401" not in page and "InvalidToken" not in page


def test_a_store_paused_by_a_person_shows_no_robodash_reason(client, admin_user, store):
    store.paused = True
    store.save()
    client.force_login(admin_user)

    assert pause_reason(store.pause_kind) == ""
    assert "Paused by robodash" not in text_of(client.get("/"))


@pytest.mark.django_db(transaction=True)
def test_the_migration_turns_the_stored_pause_sentences_into_kinds() -> None:
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    try:
        old_apps = migrate_to([("calls", "0017_workbooks_read_in_the_worker")])
        OldStore = old_apps.get_model("calls", "Store")
        sentences = {
            "sent": "the provider rejected the API key (calls: HTTP 401: API Key not matched); "
            "update it, then resume",
            "polled": "the provider rejected the API key (get_call: HTTP 422); update it",
            "saved": "The provider rejected the API key when it was saved: enter a key it "
            "accepts, then resume the store.",
            "undecryptable": "cannot call the provider: InvalidToken: ",
            "by a person": "",
        }
        for name, sentence in sentences.items():
            OldStore.objects.create(
                name=name, api_key_encrypted="x", paused=True, paused_reason=sentence
            )
        OldStore.objects.create(name="running", api_key_encrypted="x")

        migrate_to(latest)

        kinds = dict(Store.objects.values_list("name", "pause_kind"))
        assert kinds == {
            "sent": "key_rejected",
            "polled": "key_rejected",
            "saved": "key_rejected",
            "undecryptable": "provider_unusable",
            "by a person": "",
            "running": "",
        }
        # The sentence stays, as the detail for support.
        assert Store.objects.get(name="sent").paused_reason == sentences["sent"]
    finally:
        migrate_to(latest)
