"""Languages: English by default, Urdu per user or per browser, Django's set_language, and
numbers and dates formatted per language. The catalogue itself is checked in
tests/test_translations.py; the right-to-left page in Chromium in tests/browser/test_urdu.py."""

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.humanize.templatetags.humanize import intcomma
from django.template.defaultfilters import date as date_filter
from django.test import Client
from django.urls import reverse
from django.utils import translation

SETLANG = "/i18n/setlang/"
TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


def html_tag(response) -> str:
    body = response.content.decode()
    return body[body.index("<html") : body.index(">", body.index("<html")) + 1]


def test_setlang_is_djangos_view_at_its_usual_address():
    assert reverse("set_language") == SETLANG


def test_english_is_the_default_for_a_new_user_with_no_accept_language(client, agent_user):
    client.force_login(agent_user)

    response = client.get(reverse("overview"))

    assert html_tag(response) == '<html lang="en" dir="ltr">'
    assert "Overview" in response.content.decode()
    assert "urdu.css" not in response.content.decode()
    assert agent_user.language == ""


def test_a_browser_asking_for_urdu_gets_urdu_before_signing_in(client, db):
    response = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="ur-PK,ur;q=0.9,en;q=0.5")

    assert html_tag(response) == '<html lang="ur" dir="rtl">'
    assert "urdu.css" in response.content.decode()


def test_switching_language_signed_out_sets_the_cookie(client, db):
    response = client.post(SETLANG, {"language": "ur", "next": "/accounts/login/"})

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    assert client.cookies["django_language"].value == "ur"
    assert html_tag(client.get("/accounts/login/")) == '<html lang="ur" dir="rtl">'


def test_a_language_chosen_on_the_sign_in_page_is_saved_to_the_user_who_signs_in(
    client, agent_user
):
    agent_user.language = "ur"
    agent_user.save()

    client.post(SETLANG, {"language": "en", "next": "/accounts/login/"})
    signed_in = client.post(reverse("login"), {"username": "bilal", "password": "pw-agent-123"})

    assert signed_in.status_code == 302
    agent_user.refresh_from_db()
    assert agent_user.language == "en"  # the choice, not the saved Urdu, from now on
    assert html_tag(client.get(reverse("overview"))) == '<html lang="en" dir="ltr">'
    # Saved: another browser, asking for Urdu, gets English too.
    other = Client()
    other.post(reverse("login"), {"username": "bilal", "password": "pw-agent-123"})
    urdu_browser = other.get(reverse("overview"), HTTP_ACCEPT_LANGUAGE="ur")
    assert html_tag(urdu_browser) == '<html lang="en" dir="ltr">'


def test_signing_in_without_choosing_a_language_keeps_the_saved_one(client, agent_user):
    agent_user.language = "ur"
    agent_user.save()

    client.post(reverse("login"), {"username": "bilal", "password": "pw-agent-123"})

    agent_user.refresh_from_db()
    assert agent_user.language == "ur"


def test_switching_language_signed_in_saves_it_and_it_is_kept_after_signing_in_again(
    client, agent_user
):
    client.force_login(agent_user)

    client.post(SETLANG, {"language": "ur", "next": "/"})

    agent_user.refresh_from_db()
    assert agent_user.language == "ur"
    # Another browser, no cookie, an English Accept-Language: the saved language wins.
    other = Client()
    other.post(reverse("login"), {"username": "bilal", "password": "pw-agent-123"})
    response = other.get(reverse("overview"), HTTP_ACCEPT_LANGUAGE="en")
    assert html_tag(response) == '<html lang="ur" dir="rtl">'

    client.post(SETLANG, {"language": "en", "next": "/"})
    agent_user.refresh_from_db()
    assert agent_user.language == "en"


def test_setlang_refuses_get_a_missing_csrf_token_and_unknown_languages(agent_user):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(agent_user)

    assert strict.get(SETLANG + "?language=ur").status_code == 405
    assert strict.post(SETLANG, {"language": "ur"}).status_code == 403
    loose = Client()
    loose.force_login(agent_user)
    loose.post(SETLANG, {"language": "xx", "next": "/"})
    agent_user.refresh_from_db()
    assert agent_user.language == ""


def test_an_admin_sets_a_users_language_in_settings(client, admin_user, agent_user):
    client.force_login(admin_user)
    page = client.get(reverse("user_edit", args=[agent_user.pk])).content.decode()
    assert 'name="language"' in page

    client.post(
        reverse("user_edit", args=[agent_user.pk]),
        {"username": "bilal", "role": "agent", "is_active": "on", "language": "ur"},
    )

    agent_user.refresh_from_db()
    assert agent_user.language == "ur"


def test_the_top_bar_offers_the_other_language(client, agent_user):
    client.force_login(agent_user)
    english = client.get(reverse("overview")).content.decode()
    assert 'name="language" value="ur"' in english
    assert 'name="language" value="en"' not in english

    agent_user.language = "ur"
    agent_user.save()
    urdu = client.get(reverse("overview")).content.decode()
    assert 'name="language" value="en"' in urdu


@pytest.mark.parametrize(
    ("language", "amount", "day", "moment"),
    [
        ("en", "1,234,567.50", "Nov. 29, 2026", "Nov. 29, 2026, 1:05 p.m."),
        ("ur", "1,234,567.50", "29 نومبر 2026", "29 نومبر 2026، 13:05"),
    ],
)
def test_numbers_and_dates_are_formatted_per_language(language, amount, day, moment):
    when = dt.datetime(2026, 11, 29, 13, 5, tzinfo=dt.UTC)
    with translation.override(language):
        assert intcomma(Decimal("1234567.50")) == amount  # Western digits in both
        assert date_filter(when.date()) == day
        assert date_filter(when, "DATETIME_FORMAT") == moment


@pytest.mark.parametrize(
    ("language", "phone", "money", "moment", "weekday"),
    [
        ("en", "0300 1234567", "Rs 1,234.50", "29 Nov 2026, 18:05 PKT", "Sun 29 Nov 2026"),
        (
            "ur",
            # Isolated left to right: never shown as "1234567 0300" inside Urdu text.
            "\u20660300 1234567\u2069",
            "1,234.50 روپے",
            "29 نومبر 2026، 18:05 PKT",
            "اتوار 29 نومبر 2026",
        ),
    ],
)
def test_the_pages_phones_money_and_dates_read_naturally_in_each_language(
    language, phone, money, moment, weekday
):
    from calls import formatting

    when = dt.datetime(2026, 11, 29, 13, 5, tzinfo=dt.UTC)
    with translation.override(language):
        assert formatting.phone("923001234567") == phone
        assert formatting.money(Decimal("1234.50")) == money
        assert formatting.when(when, "Asia/Karachi") == moment
        assert formatting.day(when.date(), "weekday") == weekday


@pytest.mark.parametrize(
    ("language", "seconds", "said"),
    [
        ("en", 1, "1 second ago"),
        ("en", 300, "5 minutes ago"),
        ("en", 3 * 86400, "3 days ago"),
        ("ur", 300, "5 منٹ پہلے"),
        ("ur", 3600, "1 گھنٹہ پہلے"),
        ("ur", 3 * 3600, "3 گھنٹے پہلے"),
    ],
)
def test_how_long_ago_reads_in_each_language(language, seconds, said):
    """Django's naturaltime has no Urdu: the pages' 'as of 5 minutes ago' is robodash's own."""
    import datetime as dt

    from django.utils import timezone, translation

    from calls import formatting

    with translation.override(language):
        assert (
            formatting.ago(timezone.now() - dt.timedelta(seconds=seconds, milliseconds=200)) == said
        )


# A count shown before one of these nouns needs the noun's singular too ("1 call", never "1 calls").
COUNTED_NOUNS = "calls|orders|rows|events|retries|campaigns|stores|users|minutes|days|pulses"
_BLOCK = re.compile(r"{% blocktranslate([^%]*)%}(.*?){% endblocktranslate %}", re.S)
_COUNT_BEFORE_NOUN = re.compile(
    rf"{{{{ *\w+ *}}}}(?:</strong>)? +(?:[a-z]+ +){{0,2}}(?:{COUNTED_NOUNS})\b"
)


def test_every_count_before_a_noun_in_a_template_is_translated_with_its_plural():
    uncounted = [
        f"{path.relative_to(TEMPLATES)}: {found.group(0)}"
        for path in TEMPLATES.rglob("*.html")
        for block in _BLOCK.finditer(path.read_text())
        if " count " not in f"{block.group(1)} "
        for found in _COUNT_BEFORE_NOUN.finditer(block.group(2))
    ]
    assert not uncounted, "use {% blocktranslate count %}: " + "; ".join(uncounted)
