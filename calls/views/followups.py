"""Placeholder until this page is built."""

from django.http import HttpRequest, HttpResponse


def followup_list(request: HttpRequest, **kwargs: object) -> HttpResponse:
    return HttpResponse("not built yet", status=501)

