"""Phones, money, times, days and counts for people: one style, in the reader's language.

    phone("923001234567")               0300 1234567   (national_phone: the same, for files)
    money(Decimal("1234"))              Rs 1,234.00
    when(call.created_at, zone)         29 Nov 2026, 13:33 PKT   (in `zone`, which it names)
    day(day)                            29 Nov 2026
    percent(figures.answer_rate)        60.0%

Built on django.utils.formats and gettext, so Django's localisation applies to the digits, the
grouping and the month names once a language is active. A missing value shows as a dash. A plain
module: domain code words its messages with it, and the template tags (calls/templatetags/
present.py) only wrap it.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal
from typing import Any

import phonenumbers
from django.conf import settings
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from phonenumbers import PhoneNumberType

from calls.phones import PAKISTAN_COUNTRY_CODE

MISSING = "—"
# Django date-format strings (django.utils.dateformat); the month names are translated.
WHEN_FORMAT = "j M Y, H:i"  # 29 Nov 2026, 13:33
DAY_FORMAT = "j M Y"  # 29 Nov 2026
WEEKDAY_FORMAT = "D j M Y"  # Sun 29 Nov 2026
# Left-to-right isolate (U+2066 ... U+2069): a phone number inside right-to-left text keeps its
# order ("0300 1234567", never "1234567 0300"), in a page, a title or a confirm dialog alike.
_LTR_ISOLATE = "\u2066{}\u2069"


def _date_format(english: str, setting: str, prefix: str = "") -> str:
    """English keeps the compact style above; another language writes dates its own way, from
    its formats module (robodash/formats/ur/formats.py: "29 نومبر 2026، 13:33")."""
    if (translation.get_language() or "en").split("-")[0] == "en":
        return english
    return prefix + str(formats.get_format(setting))


def national_phone(number: str) -> str:
    """'923001234567' -> '0300 1234567' (phonenumbers' national style), in any language: the
    exports' phones. Anything but a Pakistani mobile is given as stored."""
    try:
        parsed = phonenumbers.parse("+" + number.lstrip("+"))
    except phonenumbers.NumberParseException:
        return number
    if (
        parsed.country_code == PAKISTAN_COUNTRY_CODE
        and phonenumbers.number_type(parsed) == PhoneNumberType.MOBILE
    ):
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    return number


def phone(number: str | None) -> str:
    """A phone on a page: national_phone, kept left to right inside right-to-left text."""
    if not number:
        return MISSING
    shown = national_phone(number)
    return _LTR_ISOLATE.format(shown) if translation.get_language_bidi() else shown


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


def when(moment: dt.datetime | None, zone: Any = None) -> str:
    """A moment in `zone` (a zone name, a ZoneInfo or a Store; else the stores' default zone,
    never the server's UTC), followed by the zone's short name, so that no time on a page
    leaves its reader guessing: '29 Nov 2026, 13:33 PKT'."""
    if moment is None:
        return MISSING
    tz = _zone(zone) or _zone(settings.ROBODASH_DEFAULT_STORE_TIMEZONE)
    local = moment.astimezone(tz)
    shown = formats.date_format(local, _date_format(WHEN_FORMAT, "DATETIME_FORMAT"))
    return f"{shown} {local.tzname()}"


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


def day(value: dt.date | None, style: str = "") -> str:
    """A day: '29 Nov 2026', or 'Sun 29 Nov 2026' with style 'weekday'."""
    if value is None:
        return MISSING
    if style == "weekday":
        return formats.date_format(value, _date_format(WEEKDAY_FORMAT, "DATE_FORMAT", "l "))
    return formats.date_format(value, _date_format(DAY_FORMAT, "DATE_FORMAT"))


def percent(value: Decimal | None) -> str:
    """A rate in percent as stats computes it (one decimal): '60.0%'."""
    if value is None:
        return MISSING
    return _("%(rate)s%%") % {"rate": formats.number_format(value, 1, use_l10n=True)}


def retry_delays(seconds: list[int] | None) -> str:
    """A store's retry delays (stored in seconds) in the minutes the form takes them:
    '5, 10, 30 min'; a delay of no whole minutes (set by a command) keeps its seconds:
    '2 s, 5 min'."""
    if not seconds:
        return MISSING
    if all(delay % 60 == 0 for delay in seconds):
        return _("%(delays)s min") % {"delays": ", ".join(count(d // 60) for d in seconds)}
    return ", ".join(
        _("%(n)s min") % {"n": count(d // 60)} if d % 60 == 0 else _("%(n)s s") % {"n": count(d)}
        for d in seconds
    )


def count(value: int | None) -> str:
    if value is None:
        return MISSING
    if type(value) is int and -1000 < value < 1000:
        # No thousands to group, no decimals: the digits as they are, in any language. The
        # reports format a few thousand counts a page, mostly small ones.
        return str(value)
    return formats.number_format(value, 0, use_l10n=True, force_grouping=True)


def verdict_reason(reason: dict[str, Any]) -> str:
    """One rule that matched an order at intake (calls/rules.py), in words: 'below Rs 1,000.00',
    'trusted: 4 delivered, none returned', 'blocked: fake orders', '2 orders returned', 'arrived
    3 days after it was placed'. A rule
    this version does not know is given by its code."""
    rule = reason.get("rule")
    if rule == "below_min":
        return _("below %(amount)s") % {"amount": money(reason.get("min"))}
    if rule == "above_max":
        return _("above %(amount)s") % {"amount": money(reason.get("max"))}
    if rule == "trusted":
        delivered = int(reason.get("delivered") or 0)
        return ngettext(
            "trusted: %(n)s delivered, none returned",
            "trusted: %(n)s delivered, none returned",
            delivered,
        ) % {"n": count(delivered)}
    if rule == "blocked":
        why = str(reason.get("reason") or "").strip()
        return _("blocked: %(reason)s") % {"reason": why} if why else _("blocked")
    if rule == "returns":
        returned = int(reason.get("returned") or 0)
        return ngettext("%(n)s order returned", "%(n)s orders returned", returned) % {
            "n": count(returned)
        }
    if rule == "stale":
        return late_arrival(int(reason.get("hours") or 0))
    return str(rule or MISSING)


def late_arrival(hours: int) -> str:
    """'arrived 3 days after it was placed' (whole days from two days on, else hours)."""
    if hours >= 48:
        days = hours // 24
        return ngettext(
            "arrived %(n)s day after it was placed", "arrived %(n)s days after it was placed", days
        ) % {"n": count(days)}
    return ngettext(
        "arrived %(n)s hour after it was placed", "arrived %(n)s hours after it was placed", hours
    ) % {"n": count(hours)}


def phone_cap_reached(cap: Any) -> str:
    """Why a call waits for tomorrow: its phone had the store's daily cap of calls today."""
    calls = int(cap or 0)
    return ngettext(
        "this phone had %(n)s call today, the store's daily cap",
        "this phone had %(n)s calls today, the store's daily cap",
        calls,
    ) % {"n": count(calls)}


def previewed_rule(rule: str, store: Any) -> str:
    """A rule as the store's settings set it, for the rules' preview (calls/rule_preview.py):
    'Below Rs 1,000.00', 'Trusted: 3 delivered, none returned'. `store` carries the settings,
    typed or saved."""
    if rule == "blocked":
        return _("From a blocked phone")
    if rule == "returns":
        n = int(store.hold_after_returns or 0)
        return ngettext(
            "From a phone with %(n)s returned order",
            "From a phone with %(n)s or more returned orders",
            n,
        ) % {"n": count(n)}
    if rule == "stale":
        n = int(store.stale_after_hours or 0)
        return ngettext(
            "Arrived more than %(n)s hour after it was placed",
            "Arrived more than %(n)s hours after it was placed",
            n,
        ) % {"n": count(n)}
    if rule == "below_min":
        return _("Below %(amount)s") % {"amount": money(store.call_min_amount)}
    if rule == "above_max":
        return _("Above %(amount)s") % {"amount": money(store.call_max_amount)}
    if rule == "trusted":
        n = int(store.trust_after or 0)
        return ngettext(
            "Trusted: %(n)s delivered order, none returned",
            "Trusted: %(n)s or more delivered orders, none returned",
            n,
        ) % {"n": count(n)}
    return rule


def verdict_reasons(reasons: Any) -> str:
    """Every rule that matched, in words, in the order they were judged ('' for none): the
    timeline, /orders/, the exports, the API and the shops' notes all say them this way."""
    if not isinstance(reasons, list):
        return ""
    return "; ".join(verdict_reason(r) for r in reasons if isinstance(r, dict))
