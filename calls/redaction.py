"""Keep provider API keys and customers' data out of every text that leaves the process.

The provider takes its key, and a call's phone, amount and order id, in the query string, so
any URL we build for it carries them. The client never puts a URL into its own errors; this
module is the second line: every log handler runs `RedactSecretsFilter`, and stored errors
pass through `redact()`. A provider URL (one whose query holds `api_key=`) loses its whole
query string; a known key is scrubbed wherever else it appears.

The known keys are the stores' current ones (remembered when a store's key is read or saved,
replacing that store's previous key) and, for as long as a client uses it, any other key (one
typed into Verify, or checked by `add_store`): never every key a process has ever seen.
"""

import logging
import re
import threading
from collections import Counter
from urllib.parse import quote, quote_plus

REDACTED = "[redacted]"
# The query of a provider URL, full or path-only as urllib3 logs it: everything after `?`.
_PROVIDER_QUERY = re.compile(r"\?[^\s'\"#]*api_key=[^\s'\"#]*", re.IGNORECASE)
_QUERY_KEY = re.compile(r"(api_key=)[^&\s'\"#]+", re.IGNORECASE)

_store_keys: dict[int, frozenset[str]] = {}
_keys_in_use: Counter[str] = Counter()
_lock = threading.Lock()


def _spellings(secret: str) -> frozenset[str]:
    """The key as typed and as it travels percent-encoded in a query string."""
    if not secret or len(secret) < 4:
        return frozenset()
    return frozenset({secret, quote_plus(secret), quote(secret, safe="")})


def remember_store_key(store_id: int, key: str) -> None:
    """`key` is store `store_id`'s current key; its previous one is no longer scrubbed."""
    with _lock:
        _store_keys[store_id] = _spellings(key)


def remember_store_keys(keys: dict[int, str]) -> None:
    """`keys` are every store's current keys (by store id): forget any other store's."""
    with _lock:
        _store_keys.clear()
        _store_keys.update({store_id: _spellings(key) for store_id, key in keys.items()})


def hold_secret(secret: str) -> None:
    """Scrub `secret` until the matching `release_secret` (a client that uses it is open)."""
    with _lock:
        _keys_in_use.update(_spellings(secret))


def release_secret(secret: str) -> None:
    with _lock:
        _keys_in_use.subtract(_spellings(secret))
        for spelling in [s for s, count in _keys_in_use.items() if count <= 0]:
            del _keys_in_use[spelling]


def known_secrets() -> frozenset[str]:
    with _lock:
        return frozenset().union(*_store_keys.values(), _keys_in_use)


def redact(text: str) -> str:
    text = _PROVIDER_QUERY.sub("?" + REDACTED, text)
    text = _QUERY_KEY.sub(r"\1" + REDACTED, text)
    # Longest first, so a key's encoded spelling is not half-replaced by a shorter one.
    for secret in sorted(known_secrets(), key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed log call must not hide the line
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
