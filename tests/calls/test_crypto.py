"""The provider keys' encryption at rest: FIELD_ENCRYPTION_KEY read once, by the settings, and
the stored keys encrypted with the first of its keys and read with any (rotation)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from calls import crypto
from robodash.settings import fernet_keys

NEW_KEY = Fernet.generate_key().decode()
OLD_KEY = Fernet.generate_key().decode()


@pytest.fixture
def fresh_fernet() -> Iterator[None]:
    """crypto keeps its MultiFernet for the process; a test that changes the keys rebuilds it."""
    crypto._fernet.cache_clear()
    yield
    crypto._fernet.cache_clear()


def test_the_keys_are_read_in_order_without_spaces_or_empty_entries() -> None:
    assert fernet_keys(f" {NEW_KEY} ,, {OLD_KEY} ,") == [NEW_KEY, OLD_KEY]


# Named ids: a generated key in a test's id would differ between pytest-xdist's processes.
@pytest.mark.parametrize(
    "value",
    ["", " , ", "not-a-key", f"{NEW_KEY},short"],
    ids=["empty", "commas", "not-a-key", "a-key-and-a-short-one"],
)
def test_a_malformed_key_is_refused_without_echoing_it(value: str) -> None:
    with pytest.raises(ImproperlyConfigured) as refused:
        fernet_keys(value)

    message = str(refused.value)
    assert "FIELD_ENCRYPTION_KEY must be one or more comma-separated Fernet keys" in message
    assert all(part.strip() not in message for part in value.split(",") if part.strip())


def test_keys_are_stored_with_the_first_key_the_settings_read_and_read_with_any(
    fresh_fernet: None,
) -> None:
    stored_before_rotation = Fernet(OLD_KEY.encode()).encrypt(b"old-api-key").decode()

    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY, OLD_KEY]):
        token = crypto.encrypt("new-api-key")
        assert crypto.decrypt(stored_before_rotation) == "old-api-key"

    assert Fernet(NEW_KEY.encode()).decrypt(token.encode()) == b"new-api-key"


def test_a_key_stored_under_a_key_no_longer_listed_says_how_to_rotate(
    fresh_fernet: None,
) -> None:
    stored = Fernet(OLD_KEY.encode()).encrypt(b"old-api-key").decode()

    with (
        override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY]),
        pytest.raises(ImproperlyConfigured, match="Add the old key after the new one"),
    ):
        crypto.decrypt(stored)
