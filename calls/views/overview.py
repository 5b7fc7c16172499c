"""Placeholder until this page is built."""

from django.http import HttpRequest, HttpResponse


def overview(request: HttpRequest, **kwargs: object) -> HttpResponse:
    return HttpResponse("not built yet", status=501)


def balances(request: HttpRequest, **kwargs: object) -> HttpResponse:
    return HttpResponse("not built yet", status=501)

