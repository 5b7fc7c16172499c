"""Loaded by schemathesis (SCHEMATHESIS_HOOKS) in tests/shops/test_api_description.py: what the
description's `pk-mobile` format means, as values to send. Without it a fuzzer sends random text
as a phone, which the API rightly refuses."""

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
