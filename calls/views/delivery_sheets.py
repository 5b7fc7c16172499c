"""A courier's sheet uploaded on a store's page (admins only): the file is kept for a worker,
which applies it (calls/intake/delivery_sheets.py); the store's page shows the latest sheet, how
far the worker has got (polled), then what became of its rows and the first rows it could not
use, each said in the reader's language when the page is drawn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.contrib import messages
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseStopPolling

from calls import tasks
from calls.forms import DeliverySheetForm, as_sentence
from calls.intake.deliveries import describe_problem
from calls.intake.delivery_sheets import (
    KINDS,
    kind_words,
    latest_sheet,
    receive_sheet,
    saved_summary,
)
from calls.intake.file_errors import ImportFileError, describe
from calls.models import DeliverySheet, Store
from calls.permissions import SETTINGS, role_required
from calls.views import HtmxHttpRequest, signed_in_user

SECTION = "settings/_delivery_sheet.html"


def sheet_context(store: Store, form: DeliverySheetForm | None = None) -> dict[str, Any]:
    """What the store page's courier-sheet section shows: the upload form and the store's
    latest sheet, its counts and problem rows in words."""
    sheet = latest_sheet(store)
    context: dict[str, Any] = {"store": store, "sheet_form": form or DeliverySheetForm()}
    if sheet is None:
        return context
    summary = saved_summary(sheet)
    done = summary.rows
    context |= {
        "sheet": sheet,
        "sheet_done": done,
        "sheet_percent": min(100, done * 100 // sheet.rows) if sheet.rows else 0,
        "sheet_kinds": [
            (kind_words(code), summary.counts[code]) for code in KINDS if summary.counts[code]
        ],
        "sheet_problems": [
            (problem.row, describe_problem(problem.code, problem.params))
            for problem in summary.problems
        ],
        "sheet_more_problems": summary.problem_count - len(summary.problems),
        "sheet_error": (
            as_sentence(describe(sheet.error_code, sheet.error_params))
            if sheet.status == DeliverySheet.Status.FAILED
            else ""
        ),
    }
    return context


@role_required(SETTINGS)
@require_POST
def store_delivery_sheet(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Keep the uploaded sheet for a worker, then back to the store's page, which shows it."""
    store = get_object_or_404(Store, pk=pk)
    back = reverse("store_edit", args=[store.pk]) + "#courier-sheet"
    form = DeliverySheetForm(request.POST, request.FILES)
    if not form.is_valid():
        for error in form.errors.get("file", []):
            messages.error(request, str(error))
        return redirect(back)
    file = form.cleaned_data["file"]
    try:
        with transaction.atomic():
            sheet = receive_sheet(
                file,
                store=store,
                filename=Path(file.name or "sheet.csv").name,
                created_by=signed_in_user(request),
            )
            transaction.on_commit(lambda: tasks.apply_delivery_sheet.delay(sheet.pk))
    except ImportFileError as error:
        messages.error(request, as_sentence(str(error)))
        return redirect(back)
    messages.success(
        request,
        _("Sheet %(name)s received: its parcels are being recorded.") % {"name": sheet.filename},
    )
    return redirect(back)


@role_required(SETTINGS)
def store_delivery_sheet_status(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The courier-sheet section, polled while a worker applies the latest sheet (286 once it
    has ended: htmx stops polling)."""
    store = get_object_or_404(Store, pk=pk)
    context = sheet_context(store)
    html = render_to_string(SECTION, context, request=request)
    sheet = context.get("sheet")
    if sheet is None or sheet.status != DeliverySheet.Status.READING:
        return HttpResponseStopPolling(html)
    return HttpResponse(html)
