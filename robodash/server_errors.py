"""The answer to a request that failed: a 503 when PostgreSQL could not be reached, Django's own
500 otherwise.

While PostgreSQL restarts or fails over, a request that needs it cannot be served: a shop's
webhook or an API order is not stored (each is one transaction). A 503 with Retry-After says
so, and that the same request may be sent again (a shop retries any answer but a 2xx; an API
client is told when); a 500 would say robodash is broken. Django still logs the error with its
traceback (django.request).
"""

from __future__ import annotations

import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from django.views import defaults

RETRY_AFTER_SECONDS = 5  # a restart takes a second or two


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: called by Django while the request's exception is being handled."""
    if isinstance(sys.exc_info()[1], OperationalError | InterfaceError):
        text = _("The database cannot be reached just now. Try again in a few seconds.")
        response = HttpResponse(text + "\n", status=503, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    return defaults.server_error(request)
