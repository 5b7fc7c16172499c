"""Phone numbers as merchants type them, normalised to the provider's 923XXXXXXXXX or refused."""

import phonenumbers
import pytest
from phonenumbers import PhoneNumberType

from calls.phones import InvalidPhone, mobile_search_prefix, normalize_pk_mobile

WHOLE_MOBILE_SHAPES = [
    "03001234567",
    "0300-1234567",
    "0300 123 4567",
    "0300.123.4567",
    "(0300) 1234567",
    "+92 300 1234567",
    "+92-300-1234567",
    "+923001234567",
    "00923001234567",
    "0092 300 1234567",
    "923001234567",
    "3001234567",
    "  0300-1234567  ",
]


@pytest.mark.parametrize("raw", WHOLE_MOBILE_SHAPES)
def test_every_common_way_of_writing_a_mobile_becomes_923_and_ten_digits(raw):
    assert normalize_pk_mobile(raw) == "923001234567"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0311-2345678", "923112345678"),  # Zong
        ("0345 6789012", "923456789012"),  # Telenor
        ("0333 1112223", "923331112223"),  # Ufone
        ("0355 1234567", "923551234567"),  # SCO
    ],
)
def test_mobiles_of_every_network_are_accepted(raw, expected):
    assert normalize_pk_mobile(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "phone is missing"),
        ("   ", "phone is missing"),
        ("abc", "phone 'abc' is not a number"),
        ("0300-CALLNOW", "phone '0300-CALLNOW' is not a number"),
        ("9.23001E+11", "scientific notation"),
        ("021-3456789", "phone '021-3456789' is a landline, not a mobile number"),
        ("021-34567890", "phone '021-34567890' is a landline, not a mobile number"),
        ("042-35761234", "is a landline, not a mobile number"),
        ("+44 7911 123456", "is a foreign number (+44), not a Pakistani mobile"),
        ("+1 415 555 2671", "is a foreign number (+1), not a Pakistani mobile"),
        ("0044 7911 123456", "is a foreign number (+44)"),
        ("0300-12345", "is too short for a mobile number"),
        ("0300-123456789", "is too long for a mobile number"),
        ("0399 1234567", "has no Pakistani mobile network code 0399"),
        ("0800 12345", "is a toll-free number, not a mobile number"),
        ("111-123-456", "is a UAN (universal access) number"),
        ("12345", "is too short to be a phone number"),
    ],
)
def test_numbers_that_cannot_be_called_are_refused_with_the_reason(raw, reason):
    with pytest.raises(InvalidPhone) as refused:
        normalize_pk_mobile(raw)
    assert reason in str(refused.value)
    assert isinstance(refused.value, ValueError)


def test_the_refusal_keeps_the_number_as_typed_and_the_bare_reason():
    with pytest.raises(InvalidPhone) as refused:
        normalize_pk_mobile(" 021-3456789 ")
    assert refused.value.raw == "021-3456789"
    assert refused.value.reason == "is a landline, not a mobile number"


def test_the_fast_path_agrees_with_phonenumbers_on_every_03xx_code():
    disagreements = []
    for code in range(300, 400):
        for raw in (f"0{code}1234567", f"+92 {code} 7654321", f"92{code}0000000"):
            number = phonenumbers.parse(raw, "PK")
            is_mobile = (
                phonenumbers.is_valid_number(number)
                and phonenumbers.number_type(number) == PhoneNumberType.MOBILE
            )
            expected = f"92{number.national_number}" if is_mobile else None
            try:
                got: str | None = normalize_pk_mobile(raw)
            except InvalidPhone:
                got = None
            if got != expected:
                disagreements.append((raw, got, expected))
    assert disagreements == []


# --- the search box's partial input ------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "prefix"),
    [
        ("0300 123", "92300123"),
        ("0300-1234567", "923001234567"),
        ("+92 300-12", "9230012"),
        ("0092 300", "92300"),
        ("300", "92300"),
        ("03", "923"),
        ("(0300) 12", "9230012"),
        ("92", "92"),
        ("+92", "92"),
        ("0092", "92"),
    ],
)
def test_the_search_reads_the_start_of_a_mobile_in_every_usual_shape(typed, prefix):
    assert mobile_search_prefix(typed) == prefix


@pytest.mark.parametrize("typed", ["KK-100", "ORD", "0", "021-345", "9", "0300x", "+44 7911"])
def test_text_that_is_not_the_start_of_a_mobile_is_no_phone_search(typed):
    assert mobile_search_prefix(typed) is None


@pytest.mark.parametrize("raw", WHOLE_MOBILE_SHAPES)
def test_a_whole_number_searches_for_exactly_what_normalising_it_stores(raw):
    assert mobile_search_prefix(raw) == normalize_pk_mobile(raw)
