"""Keep provider API keys out of every text that leaves the process.

The provider takes its key in the query string, so any URL we build carries it. The client
never puts a URL into its own errors; this module is the second line: every log handler runs
`RedactSecretsFilter`, and stored errors pass through `redact()`.
"""

import logging
import re
import threading

REDACTED = "[redacted]"
_QUERY_KEY = re.compile(r"(api_key=)[^&\s'\"#]+", re.IGNORECASE)

_known_secrets: set[str] = set()
_lock = threading.Lock()


def remember_secret(secret: str) -> None:
    """Register a key so it is scrubbed wherever it appears, not only after `api_key=`."""
    if secret and len(secret) >= 4:
        with _lock:
            _known_secrets.add(secret)


def redact(text: str) -> str:
    text = _QUERY_KEY.sub(r"\1" + REDACTED, text)
    for secret in tuple(_known_secrets):
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
