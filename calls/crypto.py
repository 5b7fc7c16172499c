"""Encryption at rest for provider API keys (Fernet, rotatable through MultiFernet)."""

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


@cache
def _fernet() -> MultiFernet:
    # The keys as robodash/settings.py read and checked them when the process started.
    return MultiFernet([Fernet(key) for key in settings.FIELD_ENCRYPTION_KEYS])


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise ImproperlyConfigured(
            "A stored API key cannot be decrypted: FIELD_ENCRYPTION_KEY has changed. "
            "Add the old key after the new one (comma-separated) to rotate."
        ) from None
