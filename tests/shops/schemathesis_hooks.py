"""Loaded by schemathesis (SCHEMATHESIS_HOOKS) in tests/shops/test_api_description.py: what the
description's `pk-mobile`, `past-date-time` and `offset-date-time` formats mean, as values to
send. Without it a fuzzer sends random text as a phone, and times in the future as a parcel's,
which the API rightly refuses."""

import datetime as dt

import phonenumbers
import schemathesis
from hypothesis import strategies as st

# phonenumbers' own pattern for Pakistan's mobile numbers (3XX XXXXXXX), as calls/phones.py uses.
MOBILE = phonenumbers.PhoneMetadata.metadata_for_region("PK").mobile.national_number_pattern

schemathesis.openapi.format(
    "pk-mobile",
    st.builds(
        lambda prefix, gap, national: f"{prefix}{national[:3]}{gap}{national[3:]}",
        st.sampled_from(["0", "+92", "+92 ", "92", "0092"]),
        st.sampled_from(["", " ", "-"]),
        st.from_regex(f"{MOBILE}", fullmatch=True),
    ),
)

# RFC 3339 times of the past, in UTC or Pakistan's offset, to the second or the microsecond.
schemathesis.openapi.format(
    "past-date-time",
    st.builds(
        lambda when, zone, seconds: when.replace(tzinfo=zone).isoformat(
            timespec="seconds" if seconds else "microseconds"
        ),
        st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2025, 12, 31)),
        st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=5))]),
        st.booleans(),
    ),
)

HOURS_4 = dt.timedelta(hours=4)

# Any RFC 3339 time, past or future (an order's placed time), in a few offsets.
schemathesis.openapi.format(
    "offset-date-time",
    st.builds(
        lambda when, zone: when.replace(tzinfo=zone).isoformat(timespec="seconds"),
        st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2099, 12, 31)),
        st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=5)), dt.timezone(-HOURS_4)]),
    ),
)
