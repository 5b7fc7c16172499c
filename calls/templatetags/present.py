"""How every page shows phones, money, times, days, rates and the provider's codes: one style.

    {% load present %}
    {{ call.phone|phone }}              0300 1234567
    {{ figures.charges|money }}         Rs 1,234.00
    {{ call.created_at|when:zone }}     29 Nov 2026, 13:33   (in `zone`, a name or a ZoneInfo)
    {{ day|day }}                       29 Nov 2026
    {{ figures.answer_rate|percent }}   60.0%
    {{ call|provider_answer }}          Answered, pressed 1 (confirm)

Built on django.utils.formats and gettext, so Django's localisation applies to the digits, the
grouping and the month names once a language is active. A missing value shows as a dash.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from decimal import Decimal
from typing import Any

from django import template
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from calls.phones import MOBILE_NATIONAL_DIGITS, PAKISTAN_COUNTRY_CODE
from calls.pipeline import outcomes
from calls.pipeline.provider import KEY_REJECTED, in_plain_words

register = template.Library()

MISSING = "—"
# Django date-format strings (django.utils.dateformat); the month names are translated.
WHEN_FORMAT = "j M Y, H:i"  # 29 Nov 2026, 13:33
DAY_FORMAT = "j M Y"  # 29 Nov 2026
WEEKDAY_FORMAT = "D j M Y"  # Sun 29 Nov 2026
_OPERATOR_DIGITS = 4  # 0300: the 0 and the operator's code
# Left-to-right isolate (U+2066 ... U+2069): a phone number inside right-to-left text keeps its
# order ("0300 1234567", never "1234567 0300"), in a page, a title or a confirm dialog alike.
_LTR_ISOLATE = "\u2066{}\u2069"


def _date_format(english: str, setting: str, prefix: str = "") -> str:
    """English keeps the compact style above; another language writes dates its own way, from
    its formats module (robodash/formats/ur/formats.py: "29 نومبر 2026، 13:33")."""
    if (translation.get_language() or "en").split("-")[0] == "en":
        return english
    return prefix + str(formats.get_format(setting))


@register.filter
def phone(number: str | None) -> str:
    """'923001234567' -> '0300 1234567'; anything else is shown as stored."""
    if not number:
        return MISSING
    country = str(PAKISTAN_COUNTRY_CODE)
    digits = number.lstrip("+")
    if digits.isdigit() and digits.startswith(country):
        national = digits[len(country) :]
        if len(national) == MOBILE_NATIONAL_DIGITS:
            national = "0" + national
            number = f"{national[:_OPERATOR_DIGITS]} {national[_OPERATOR_DIGITS:]}"
    return _LTR_ISOLATE.format(number) if translation.get_language_bidi() else number


@register.filter
def money(amount: Decimal | int | str | None) -> str:
    """Rupees with two decimals and grouped thousands: 'Rs 1,234.00'."""
    if amount is None or amount == "":
        return MISSING
    value = Decimal(amount)
    number = formats.number_format(value, 2, use_l10n=True, force_grouping=True)
    return _("Rs %(amount)s") % {"amount": number}


def _zone(zone: Any) -> zoneinfo.ZoneInfo | None:
    if zone in (None, ""):
        return None
    if isinstance(zone, dt.tzinfo):
        return zone  # type: ignore[return-value]
    zone_name = getattr(zone, "timezone", zone)  # a Store carries its zone's name
    return zoneinfo.ZoneInfo(str(zone_name))


@register.filter
def when(moment: dt.datetime | None, zone: Any = None) -> str:
    """A moment in `zone` (a zone name, a ZoneInfo or a Store; else the active zone)."""
    if moment is None:
        return MISSING
    tz = _zone(zone)
    local = moment.astimezone(tz) if tz is not None else timezone.localtime(moment)
    return formats.date_format(local, _date_format(WHEN_FORMAT, "DATETIME_FORMAT"))


@register.filter
def ago(moment: dt.datetime | None) -> str:
    """How long ago `moment` was, in the page's language ("5 minutes ago"): Django's
    naturaltime has no Urdu, so the words are in robodash's own catalogue."""
    if moment is None:
        return MISSING
    seconds = max(0, int((timezone.now() - moment).total_seconds()))
    if seconds < 60:
        text = ngettext("%(n)s second ago", "%(n)s seconds ago", seconds)
        n = seconds
    elif seconds < 3600:
        n = seconds // 60
        text = ngettext("%(n)s minute ago", "%(n)s minutes ago", n)
    elif seconds < 86400:
        n = seconds // 3600
        text = ngettext("%(n)s hour ago", "%(n)s hours ago", n)
    else:
        n = seconds // 86400
        text = ngettext("%(n)s day ago", "%(n)s days ago", n)
    return text % {"n": formats.number_format(n, force_grouping=True)}


@register.filter
def day(value: dt.date | None, style: str = "") -> str:
    """A day: '29 Nov 2026', or 'Sun 29 Nov 2026' with style 'weekday'."""
    if value is None:
        return MISSING
    if style == "weekday":
        return formats.date_format(value, _date_format(WEEKDAY_FORMAT, "DATE_FORMAT", "l "))
    return formats.date_format(value, _date_format(DAY_FORMAT, "DATE_FORMAT"))


@register.filter
def percent(value: Decimal | None) -> str:
    """A rate in percent as stats computes it (one decimal): '60.0%'."""
    if value is None:
        return MISSING
    return _("%(rate)s%%") % {"rate": formats.number_format(value, 1, use_l10n=True)}


@register.filter
def count(value: int | None) -> str:
    if value is None:
        return MISSING
    return formats.number_format(value, 0, use_l10n=True, force_grouping=True)


@register.filter
def provider_answer(call: Any) -> str:
    """The provider's last report on a call, in words."""
    if call.call_status is None:
        return MISSING
    return outcomes.provider_answer_in_words(call.call_status, call.dtmf)


@register.filter
def plain_provider_error(text: str) -> str:
    """A stored provider failure (a call's last error) as a merchant reads it."""
    return in_plain_words(text) if text else ""


@register.filter
def pause_reason(text: str) -> str:
    """Why robodash paused a store, in plain words (the stored reason holds the raw detail)."""
    if not text:
        return ""
    plain = in_plain_words(text)
    if plain == KEY_REJECTED:
        return _("The provider rejected this store's API key. Update the key, then resume.")
    if text.startswith("cannot call the provider"):
        return _("robodash could not use the provider; support can see the detail.")
    return plain


_NO_FINAL_STATUS = re.compile(
    r"^the provider reported no final status within \d+ s of sending \(last status (\w+)"
)
_UNCLEAR_SEND = "; the call may or may not have been placed, so it was not sent again"


@register.filter
def review_reason(text: str) -> str:
    """Why a call needs a person, in plain words (the stored reason may quote the provider)."""
    if not text:
        return ""
    stuck = _NO_FINAL_STATUS.match(text)
    if stuck:
        last = stuck.group(1)
        status = outcomes.status_in_words(int(last)) if last.isdigit() else None
        return _("The provider gave no final answer in time (last: %(status)s).") % {
            "status": (status or _("nothing")).lower()
        }
    if text.endswith(_UNCLEAR_SEND):
        return _(
            "The provider's answer to sending was unclear: the call may or may not have been "
            "placed, so it was not sent again."
        )
    return in_plain_words(text)


# --- The timeline: each event's data as words -------------------------------------------------


def _event_value(key: str, value: Any, zone: Any) -> tuple[str, str] | None:
    if key == "call_status":
        return _("Provider"), outcomes.status_in_words(value)
    if key == "dtmf":
        return _("Key"), outcomes.key_in_words(value)
    if key == "retry":
        return _("Provider retries so far"), str(value)
    if key == "call_charges":
        return _("Charges"), money(value)
    if key in ("scheduled_for", "retry_at"):
        try:
            return _("Until") if key == "scheduled_for" else _("Next try"), when(
                dt.datetime.fromisoformat(str(value)), zone
            )
        except ValueError:
            return None
    if key == "error":
        return _("Problem"), in_plain_words(str(value))
    if key == "attempt":
        return _("Attempt"), str(value)
    if key in ("child", "parent"):
        return (_("New call") if key == "child" else _("From call")), f"#{value}"
    if key in ("outcome", "decision", "previous"):
        label = {"outcome": _("Outcome"), "decision": _("Decision"), "previous": _("Was")}[key]
        return label, str(value).replace("_", " ")
    if key == "reason":
        return _("Why"), str(value)
    if key == "note":
        return _("Note"), str(value)
    if key in ("late", "reopened", "reattempt"):
        words = {
            "late": _("accepted late"),
            "reopened": _("reopened"),
            "reattempt": _("re-attempt"),
        }
        return (words[key], "") if value else None
    # provider_call_id, error_kind and the like are for support: on the call page's raw section.
    return None


@register.simple_tag
def event_details(event: Any, zone: Any = None) -> list[tuple[str, str]]:
    """The event's data a merchant can read, as (label, value) pairs in words."""
    details = []
    for key, value in (event.data or {}).items():
        pair = _event_value(key, value, zone)
        if pair is not None:
            details.append(pair)
    return details


@register.simple_tag
def provider_state(store: Any) -> str:
    """The store's provider state as the pages word it (calls.pipeline.balances.provider_states):
    "rejected", "unreachable", "ok" or "" (no recent refresh)."""
    from calls.pipeline.balances import (
        provider_states,  # calls.pipeline.balances formats times with this module
    )

    return provider_states([store])[store.pk]
