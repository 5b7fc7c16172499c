"""Plain language and honest states on the pages merchants read: the provider's codes in words,
one style for phones, money and times, the Overview's figures opening the calls behind them,
rates that say what they count, calling hours said on the campaign, and a refused key named
as such, with the provider's raw messages kept off the page."""

import datetime as dt
import re
from decimal import Decimal
from html import unescape

import pytest
from django.urls import reverse

from calls.formatting import day, money, phone, when
from calls.models import Call, CallEvent, Campaign
from calls.pipeline.balances import refresh_store_balance
from tests.calls.test_stats import add_calls

KARACHI = "Asia/Karachi"


def text(response) -> str:
    return unescape(response.content.decode())


def test_phones_money_and_times_have_one_style():
    assert phone("923001234567") == "0300 1234567"
    assert phone("not a phone") == "not a phone"
    assert money(Decimal("1234")) == "Rs 1,234.00"
    assert money(Decimal("0.5")) == "Rs 0.50"
    assert money(None) == "—"
    moment = dt.datetime(2026, 11, 29, 8, 33, tzinfo=dt.UTC)
    assert when(moment, KARACHI) == "29 Nov 2026, 13:33 PKT"  # the zone named
    assert when(moment) == "29 Nov 2026, 13:33 PKT"  # no zone given: the stores' default
    assert day(dt.date(2026, 11, 29)) == "29 Nov 2026"
    assert day(dt.date(2026, 11, 29), "weekday") == "Sun 29 Nov 2026"


@pytest.fixture
def answered(store) -> Call:
    """A call the customer answered and confirmed with 1, with its timeline."""
    campaign = Campaign.objects.create(store=store, name="November")
    (call,) = add_calls(campaign, 1, outcome=Call.Outcome.CONFIRMED, charges="6.90")
    Call.objects.filter(pk=call.pk).update(call_status=2, dtmf=1, retry=0, amount=Decimal("1500"))
    CallEvent.objects.create(
        call=call,
        kind=CallEvent.Kind.FINAL,
        at=dt.datetime(2026, 11, 29, 8, 33, tzinfo=dt.UTC),
        data={"call_status": 2, "dtmf": 1, "retry": 0, "call_charges": "6.90"},
    )
    return call


def test_the_calls_list_says_what_the_provider_reported_in_words(client, manager_user, answered):
    client.force_login(manager_user)

    page = text(client.get(reverse("call_list")))

    row = page[page.index(f'id="call-{answered.pk}"') :]
    row = row[: row.index("</tr>")]
    assert "Answered, pressed 1 (confirm)" in row
    assert "0300 1234567" in row
    assert "Rs 1,500.00" in row and "Rs 6.90" in row
    assert "2 / 1" not in row
    assert "Provider said" in page


def test_timelines_use_words_and_only_the_call_page_keeps_the_raw_codes(
    client, manager_user, answered
):
    client.force_login(manager_user)

    order_page = text(client.get(reverse("order_detail", args=[answered.shop_order_id])))
    call_page = text(client.get(reverse("call_detail", args=[answered.pk])))

    for page in (order_page, call_page):
        timeline = page[page.index('<ol class="timeline">') :]
        assert "Answered" in timeline and "pressed 1 (confirm)" in timeline
        assert "29 Nov 2026, 13:33" in timeline
    assert "call_status" not in order_page and "dtmf" not in order_page
    support = call_page[call_page.index('<details class="support-raw" id="support">') :]
    assert "call_status" in support and "<strong>2</strong>" in support
    assert "call_status" not in call_page[: call_page.index('id="support"')]


# --- The Overview ------------------------------------------------------------------------------


@pytest.fixture
def today_calls(store) -> Campaign:
    """Today: 2 confirmed, 1 cancelled, 1 callback, 1 unreachable; 2 in flight, 1 queued."""
    campaign = Campaign.objects.create(store=store, name="Today")
    add_calls(campaign, 2, outcome=Call.Outcome.CONFIRMED)
    add_calls(campaign, 1, outcome=Call.Outcome.CANCELLED)
    add_calls(campaign, 1, outcome=Call.Outcome.CALLBACK_REQUESTED)
    add_calls(campaign, 1, outcome=Call.Outcome.UNREACHABLE)
    add_calls(campaign, 2, state=Call.State.IN_PROGRESS)
    add_calls(campaign, 1, state=Call.State.QUEUED)
    return campaign


def _today_link(page: str, row_heading: str) -> tuple[str, int]:
    """The link and figure in the Today column of the Overview row `row_heading`."""
    row = page[page.index(f'<th scope="row">{row_heading}</th>') :]
    match = re.search(r'<a href="([^"]+)">([\d,]+)</a>', row[: row.index("</tr>")])
    assert match, row_heading
    return match.group(1), int(match.group(2).replace(",", ""))


def test_each_overview_count_opens_the_calls_behind_it(client, admin_user, today_calls):
    client.force_login(admin_user)
    page = text(client.get(reverse("overview")))

    expected = {
        "Calls": ("", 8),
        "Confirmed": ("outcome=confirmed", 2),
        "Cancelled": ("outcome=cancelled", 1),
        "Callbacks requested": ("outcome=callback_requested", 1),
    }
    for heading, (narrowing, figure) in expected.items():
        url, shown = _today_link(page, heading)
        assert shown == figure, heading
        assert url.startswith(reverse("call_list")) and narrowing in url
        listed = client.get(url)
        assert len(listed.context["rows"]) == figure, heading
    assert reverse("followup_list") + "?reason=callback_requested" in page  # the queue


def test_a_manager_gets_no_link_to_the_follow_ups_they_cannot_open(
    client, manager_user, today_calls
):
    client.force_login(manager_user)

    page = text(client.get(reverse("overview")))

    assert reverse("followup_list") + "?reason" not in page
    assert client.get(reverse("followup_list")).status_code == 403


def test_rates_say_what_they_count(client, admin_user, today_calls):
    client.force_login(admin_user)

    page = text(client.get(reverse("overview")))

    row = page[page.index('<th scope="row">Answer rate</th>') :]
    row = row[: row.index("</tr>")]
    # 4 answered of 5 finished; 2 in flight and 1 queued are not counted yet.
    assert '80.0%<span class="sub">of 5 finished calls; 3 still in flight or queued' in row


# --- Calling hours ----------------------------------------------------------------------------


@pytest.fixture
def after_hours(store, monkeypatch):
    """The store calls 09:00-21:00 in Karachi, and it is 22:15 there on 29 Nov 2026."""
    store.calling_start, store.calling_end = dt.time(9, 0), dt.time(21, 0)
    store.timezone = KARACHI
    store.save()
    now = dt.datetime(2026, 11, 29, 17, 15, tzinfo=dt.UTC)
    monkeypatch.setattr("calls.views.campaigns._now", lambda: now)
    return store


CALLS_START = "Calls start at 09:00 tomorrow (Asia/Karachi) — calling hours 09:00–21:00."


def test_a_campaign_outside_calling_hours_says_when_calls_start(client, admin_user, after_hours):
    running = Campaign.objects.create(store=after_hours, name="Evening", status="running")
    add_calls(running, 3, state=Call.State.QUEUED)
    client.force_login(admin_user)

    page = text(client.get(reverse("campaign_detail", args=[running.pk])))

    assert CALLS_START in page


def test_the_launch_preview_warns_before_launching_outside_calling_hours(
    client, admin_user, after_hours
):
    draft = Campaign.objects.create(store=after_hours, name="Held", status="draft")
    add_calls(draft, 2, state=Call.State.QUEUED)
    client.force_login(admin_user)

    page = text(client.get(reverse("campaign_launch", args=[draft.pk])))

    assert f"Outside calling hours: {CALLS_START}" in page


def test_inside_calling_hours_nothing_is_said(client, admin_user, after_hours, monkeypatch):
    monkeypatch.setattr(
        "calls.views.campaigns._now", lambda: dt.datetime(2026, 11, 29, 6, 0, tzinfo=dt.UTC)
    )
    running = Campaign.objects.create(store=after_hours, name="Morning", status="running")
    add_calls(running, 1, state=Call.State.QUEUED)
    client.force_login(admin_user)

    assert "Calls start at" not in text(client.get(reverse("campaign_detail", args=[running.pk])))


# --- A key the provider refuses ---------------------------------------------------------------


def test_a_refused_key_is_named_on_every_page_that_shows_the_providers_state(
    client, admin_user, store, provider_url
):
    store.api_key = "sk-wrong-key-000000000000"
    store.save()
    refresh_store_balance(store.pk)  # beat's refresh: the simulator answers "API Key not matched"
    store.refresh_from_db()
    assert store.provider_state == "rejected"  # on the row: every process reads it
    draft = Campaign.objects.create(store=store, name="Held", status="draft")
    add_calls(draft, 1, state=Call.State.QUEUED)
    client.force_login(admin_user)

    pages = {
        "overview": client.get(reverse("overview")),
        "settings": client.get(reverse("settings")),
        "store": client.get(reverse("store_edit", args=[store.pk])),
        "launch preview": client.get(reverse("campaign_launch", args=[draft.pk])),
        "launch": client.post(reverse("campaign_launch", args=[draft.pk])),
    }

    for name, response in pages.items():
        page = text(response)
        assert "The provider rejected this key" in page or "the provider rejected this key" in (
            page
        ), name
        assert "not answering" not in page, name
        for raw in ("status 422", "HTTP 200", "check_balance", "API Key not matched"):
            assert raw not in page, (name, raw)


def test_review_reasons_quoting_the_provider_are_put_in_plain_words():
    from calls.templatetags.present import review_reason

    assert (
        review_reason(
            "the provider reported no final status within 900 s of sending (last status 8, retry 3)"
        )
        == "The provider gave no final answer in time (last: waiting to be dialled)."
    )
    raw = (
        "calls: provider error (HTTP 502); the request may have been acted on; "
        "the call may or may not have been placed, so it was not sent again"
    )
    assert "HTTP 502" not in review_reason(raw)
    assert review_reason("the customer pressed 7, which means nothing here") == (
        "the customer pressed 7, which means nothing here"
    )


def _last_rule(css: str, selector: str) -> str:
    """The body of the last rule for exactly `selector` (the one that wins)."""
    bodies = re.findall(rf"(?:^|[\s}}]){re.escape(selector)}\s*\{{([^}}]*)\}}", css)
    assert bodies, selector
    return bodies[-1]


def test_chart_series_differ_by_more_than_colour(client, manager_user, today_calls):
    from django.conf import settings

    from calls.views.overview import CHART_SERIES

    css = (settings.BASE_DIR / "static" / "css" / "robodash.css").read_text()
    fills = {key: _last_rule(css, f".s-{key}") for key, _ in CHART_SERIES}
    fill_values = [re.search(r"fill:([^;]+)", body).group(1).strip() for body in fills.values()]
    assert len(set(fill_values)) == len(fill_values)  # every outcome its own fill
    assert "url(#od-hatch)" in fills["withdrawn"]  # hatched ...
    assert "stroke-dasharray" in fills["pending"]  # ... and outlined: not two greys
    client.force_login(manager_user)

    page = text(client.get(reverse("overview")))

    assert '<pattern id="od-hatch"' in page
    legend = page[page.index('class="od-legend"') :]
    for _, label in CHART_SERIES:
        assert str(label) in legend  # each colour is named beside it (labels are lazy)
