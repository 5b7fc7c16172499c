"""Pakistani mobile numbers as the provider wants them: `923XXXXXXXXX`.

Merchants paste numbers in every shape (0300-1234567, +92 300 1234567, 0092…, 92300…, 300…);
`phonenumbers` knows Pakistan's numbering plan, so it decides what is a mobile. We add the
reasons a merchant can act on when it is not one, and read the start of a number typed into a
search box the same way (`mobile_search_prefix`).
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import PhoneNumberType

PAKISTAN_COUNTRY_CODE = 92
MOBILE_NATIONAL_DIGITS = 10  # 3XX XXXXXXX after the 0 or the 92
EXAMPLE = "e.g. 0300 1234567"

# What a person or a spreadsheet puts between digits. Letters are refused outright:
# phonenumbers would read them as a keypad (0300-CALLNOW) and call somebody else.
_SEPARATORS = re.compile(r"[\s\-.()/]+")
_DIALLABLE = re.compile(r"\+?\d+")
_EXCEL_SCIENTIFIC = re.compile(r"\d(\.\d+)?e\+?\d+", re.IGNORECASE)

# Fast path for the common case (a 100,000-row import parses every number): a mobile written
# with one of the usual prefixes, checked against phonenumbers' own pattern for Pakistani
# mobiles. Anything else goes the full way through phonenumbers, which also gives the reason.
_USUAL_PREFIX = r"(?:\+92|0092|92|0)"
_USUAL_MOBILE = re.compile(_USUAL_PREFIX + r"?(3\d{9})")
# The start of a mobile in the same shapes, as a search box gets it: the country code alone, or
# any first digits of the 3XX… that follows a usual prefix.
_COUNTRY_CODE_ALONE = re.compile(r"\+92|0092|92")
_MOBILE_START = re.compile(_USUAL_PREFIX + r"?(3\d*)")
_PK_MOBILE_NATIONAL = re.compile(
    str(phonenumbers.PhoneMetadata.metadata_for_region("PK").mobile.national_number_pattern)  # type: ignore[union-attr]
)

_NOT_MOBILE_TYPES = {
    PhoneNumberType.FIXED_LINE: "is a landline, not a mobile number",
    PhoneNumberType.TOLL_FREE: "is a toll-free number, not a mobile number",
    PhoneNumberType.PREMIUM_RATE: "is a premium-rate number, not a mobile number",
    PhoneNumberType.UAN: "is a UAN (universal access) number, not a mobile number",
    PhoneNumberType.VOIP: "is a VoIP number, not a mobile number",
    PhoneNumberType.SHARED_COST: "is a shared-cost number, not a mobile number",
    PhoneNumberType.PERSONAL_NUMBER: "is a personal number, not a mobile number",
    PhoneNumberType.PAGER: "is a pager number, not a mobile number",
}


class InvalidPhone(ValueError):
    """A phone that is not a Pakistani mobile; str() is the whole sentence, ready to show."""

    def __init__(self, raw: str, reason: str) -> None:
        self.raw = raw
        self.reason = reason
        super().__init__(f"phone {raw!r} {reason}" if raw else f"phone {reason}")


def normalize_pk_mobile(raw: str) -> str:
    """`raw` as `923XXXXXXXXX`, or InvalidPhone saying why it cannot be called."""
    shown = (raw or "").strip()
    if not shown:
        raise InvalidPhone("", "is missing")
    compact = _SEPARATORS.sub("", shown)
    usual = _USUAL_MOBILE.fullmatch(compact)
    if usual and _PK_MOBILE_NATIONAL.fullmatch(usual[1]):
        return f"{PAKISTAN_COUNTRY_CODE}{usual[1]}"
    if not _DIALLABLE.fullmatch(compact):
        if _EXCEL_SCIENTIFIC.fullmatch(shown.replace(" ", "")):
            raise InvalidPhone(
                shown,
                "was turned into scientific notation by the spreadsheet: "
                "format the phone column as text and export again",
            )
        raise InvalidPhone(shown, "is not a number")
    try:
        number = phonenumbers.parse(compact, "PK")
    except phonenumbers.NumberParseException:
        raise InvalidPhone(shown, f"is not a phone number ({EXAMPLE})") from None

    if number.country_code != PAKISTAN_COUNTRY_CODE:
        raise InvalidPhone(
            shown, f"is a foreign number (+{number.country_code}), not a Pakistani mobile"
        )

    national = str(number.national_number)
    if phonenumbers.is_valid_number(number):
        kind = phonenumbers.number_type(number)
        if kind == PhoneNumberType.MOBILE:
            return f"{PAKISTAN_COUNTRY_CODE}{national}"
        raise InvalidPhone(shown, _NOT_MOBILE_TYPES.get(kind, "is not a mobile number"))

    if national.startswith("3"):
        # Shaped like a mobile (03XX…) but not a valid one: say what is wrong with it.
        if len(national) < MOBILE_NATIONAL_DIGITS:
            raise InvalidPhone(
                shown,
                f"is too short for a mobile number ({len(national) + 1} digits with the 0; "
                f"{MOBILE_NATIONAL_DIGITS + 1} expected, {EXAMPLE})",
            )
        if len(national) > MOBILE_NATIONAL_DIGITS:
            raise InvalidPhone(
                shown,
                f"is too long for a mobile number ({len(national) + 1} digits with the 0; "
                f"{MOBILE_NATIONAL_DIGITS + 1} expected, {EXAMPLE})",
            )
        raise InvalidPhone(shown, f"has no Pakistani mobile network code 03{national[1:3]}")

    if national.startswith("111"):
        raise InvalidPhone(shown, _NOT_MOBILE_TYPES[PhoneNumberType.UAN])
    # Not 03XX: an area code (021 Karachi, 042 Lahore, …) with a subscriber number of some length,
    # or too few digits to be anything.
    if len(national) < 7:
        raise InvalidPhone(shown, f"is too short to be a phone number ({EXAMPLE})")
    if len(national) > 11:
        raise InvalidPhone(shown, f"is too long to be a phone number ({EXAMPLE})")
    raise InvalidPhone(shown, "is a landline, not a mobile number")


def mobile_search_prefix(text: str) -> str | None:
    """The start of the stored `923…` number that partial input stands for, or None if the text
    is not the start of a mobile: "0300 123" -> "92300123", "+92 300-12" -> "9230012",
    "300" -> "92300". Read with normalize_pk_mobile's separators and prefixes, so a whole
    number gives what normalize_pk_mobile stores."""
    compact = _SEPARATORS.sub("", text.strip())
    if _COUNTRY_CODE_ALONE.fullmatch(compact):
        return str(PAKISTAN_COUNTRY_CODE)
    start = _MOBILE_START.fullmatch(compact)
    return f"{PAKISTAN_COUNTRY_CODE}{start[1]}" if start else None
