"""Placeholder until this page is built."""

from django.http import HttpRequest, HttpResponse


def report(request: HttpRequest, **kwargs: object) -> HttpResponse:
    return HttpResponse("not built yet", status=501)


def report_export(request: HttpRequest, **kwargs: object) -> HttpResponse:
    return HttpResponse("not built yet", status=501)

