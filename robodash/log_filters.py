"""Logging filters every handler applies (robodash/settings.py's LOGGING)."""

from __future__ import annotations

import logging


class RefusalsOnOneLine(logging.Filter):
    """A 4xx logged by Django (a page refused to an agent, a 404) keeps its one line and loses
    the traceback Django attaches: the exception is how Django answered the client, not a fault
    of robodash's. A 5xx keeps its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if record.name == "django.request" and isinstance(status, int) and 400 <= status < 500:
            record.exc_info = None
            record.exc_text = None
        return True
