"""Campaigns: the list, a new campaign (one order, or a CSV upload -> preview -> launch), a
campaign's page with its live progress, and pause / resume.

An upload is read once into the database (calls/intake/uploads.py): a CSV as it arrives, a workbook
by a worker while the launch page shows how far it got. The preview and the launch read it there,
so no file is kept once read and any web process can serve either. Nothing is
imported before "Launch", and a launch the balance cannot pay for imports nothing: the campaign
stays a draft with the upload waiting, so the merchant can top up and press "Launch" again. A
large launch runs in a worker while the campaign page shows its progress.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.humanize.templatetags.humanize import intcomma
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, OuterRef, Subquery
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext, pgettext
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRefresh, HttpResponseStopPolling

from calls import launches, tasks, transitions
from calls.exports import csv_response
from calls.figures import stats
from calls.figures.stats import Figures
from calls.formatting import day, verdict_reasons
from calls.forms import SingleOrderForm, UploadForm, as_sentence
from calls.intake import uploads
from calls.intake.file_errors import ImportFileError, describe
from calls.intake.single import create_single_call
from calls.models import Call, Campaign, Order, Store, Upload, UploadRow, User
from calls.permissions import EVERYONE, LAUNCH, role_required
from calls.pipeline.balances import check_launch, estimate_cost, refresh_balance
from calls.pipeline.dispatch import wake_dispatcher
from calls.views import HtmxHttpRequest, signed_in_user

CAMPAIGNS_PER_PAGE = 25
VALID_ROWS_PER_PAGE = 50  # the preview's pages of valid rows
REJECTED_SHOWN = 300  # the rest are in the rejected-rows CSV
SKIPPED_SHOWN = 200  # known and duplicate rows listed on the preview
FORMULA_WARNINGS_SHOWN = 50  # valid rows with a formula-like cell listed on the preview


# --- The list and the new-campaign page ------------------------------------------------------


@role_required(EVERYONE)
def campaign_list(request: HttpRequest) -> HttpResponse:
    campaigns = Campaign.objects.select_related("store").order_by("-created_at", "-id")
    page = Paginator(campaigns, CAMPAIGNS_PER_PAGE).get_page(request.GET.get("page"))
    # The page's campaigns, all time, from the counted daily figures.
    figures = stats.figures_grouped("campaign", campaigns=[c.pk for c in page.object_list])
    finished = finished_at(
        [c for c in page.object_list if has_finished(c, figures.get(c.pk, Figures()))]
    )
    rows = [
        (campaign, figures.get(campaign.pk, Figures()), finished.get(campaign.pk))
        for campaign in page.object_list
    ]
    return render(request, "campaigns/list.html", {"page": page, "rows": rows})


def has_finished(campaign: Campaign, figures: Figures) -> bool:
    """Every call of a launched campaign is final: worked out as the page is drawn, never a
    stored status (a campaign takes more orders whenever someone adds some). A standing
    campaign of a shop's or the API's orders never finishes: it is ongoing."""
    return (
        not campaign.takes_intake
        and campaign.status != Campaign.Status.DRAFT
        and figures.calls > 0
        and figures.pending == 0
    )


def finished_at(campaigns: list[Campaign]) -> dict[int, dt.datetime]:
    """When the last call of each of these (finished) campaigns became final, in one query: per
    campaign, one step back along call_campaign_finalized_idx, whatever its number of calls."""
    if not campaigns:
        return {}
    last = (
        Call.objects.filter(campaign=OuterRef("pk"), finalized_at__isnull=False)
        .order_by("-finalized_at")
        .values("finalized_at")[:1]
    )
    rows = Campaign.objects.filter(pk__in=[c.pk for c in campaigns]).annotate(last=Subquery(last))
    return {pk: at for pk, at in rows.values_list("pk", "last") if at is not None}


def _new_page(
    request: HttpRequest,
    *,
    order_form: SingleOrderForm | None = None,
    upload_form: UploadForm | None = None,
    status: int = 200,
) -> HttpResponse:
    context = {
        "order_form": order_form or SingleOrderForm(),
        "upload_form": upload_form or UploadForm(),
        "has_stores": Store.objects.exists(),
    }
    return render(request, "campaigns/new.html", context, status=status)


@role_required(LAUNCH)
def campaign_new(request: HttpRequest) -> HttpResponse:
    return _new_page(request)


@role_required(LAUNCH)
def campaign_single_order(request: HttpRequest) -> HttpResponse:
    """One order, placed at once (within the store's calling hours) if the balance allows."""
    if request.method != "POST":
        return redirect("campaign_new")
    form = SingleOrderForm(request.POST)
    if not form.is_valid():
        return _new_page(request, order_form=form)
    data = form.cleaned_data
    store = data["store"]
    check = check_launch(store, 1)
    if not check.ok:
        form.add_error(None, check.message)
        return _new_page(request, order_form=form)
    user = signed_in_user(request)
    try:
        with transaction.atomic():
            campaign, _created = Campaign.objects.get_or_create(
                store=store, name=data["campaign_name"], defaults={"created_by": user}
            )
            order = _create_order(campaign, data, user)
    except ValidationError as exc:
        for field, errors in exc.message_dict.items():
            target = field if field in form.fields else None
            for error in errors:
                form.add_error(target, as_sentence(error))
        return _new_page(request, order_form=form)
    if check.warning:
        messages.warning(request, check.message)
    if order.verdict == Order.Verdict.SKIP:
        messages.warning(
            request,
            _("Order %(order)s is not called: the store's rules skip it (%(reasons)s).")
            % {"order": order.order_id, "reasons": verdict_reasons(order.verdict_reasons)},
        )
    elif order.verdict == Order.Verdict.HOLD:
        messages.warning(
            request,
            _(
                "Order %(order)s is not called: the store's rules hold it for a person "
                "(%(reasons)s). It is in the follow-up queue."
            )
            % {"order": order.order_id, "reasons": verdict_reasons(order.verdict_reasons)},
        )
    elif campaign.status == Campaign.Status.RUNNING:
        messages.success(
            request,
            _("Order %(order)s queued: the call to %(phone)s starts shortly.")
            % {"order": order.order_id, "phone": order.phone},
        )
    else:
        messages.warning(
            request,
            _(
                "Order %(order)s queued, but campaign %(campaign)s is %(status)s: it is called "
                "once the campaign runs."
            )
            % {
                "order": order.order_id,
                "campaign": campaign.name,
                "status": campaign.get_status_display().lower(),
            },
        )
    return redirect("campaign_detail", pk=campaign.pk)


def _create_order(campaign: Campaign, data: dict[str, Any], user: User) -> Order:
    return create_single_call(
        campaign,
        phone=data["phone"],
        amount=data["amount"],
        order_id=data["order_id"],
        store_name=data["store_name"] or campaign.store.name,
        voice_id=data["voice_id"],
        created_by=user,
    )


@role_required(LAUNCH)
def campaign_upload(request: HttpRequest) -> HttpResponse:
    """Read the file into the database once (a workbook: have a worker read it), then show
    what importing it would do on the launch page. A file refused as a whole here leaves
    nothing behind, not even a new campaign."""
    if request.method != "POST":
        return redirect("campaign_new")
    form = UploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return _new_page(request, upload_form=form)
    data = form.cleaned_data
    store = data["store"]
    user = signed_in_user(request)
    try:
        with transaction.atomic():
            # A draft until launched: the dispatcher sends calls of running campaigns.
            campaign, created = transitions.draft_campaign(
                store, data["campaign_name"], voice_id=data["voice_id"], created_by=user
            )
            upload = uploads.receive_upload(
                data["file"],
                campaign=campaign,
                filename=Path(data["file"].name or "upload.csv").name,
                created_by=user,
            )
            if upload.status == Upload.Status.READING:
                upload_id = upload.pk  # a workbook: a worker reads it once this commits
                transaction.on_commit(lambda: tasks.read_upload.delay(upload_id))
    except ImportFileError as exc:
        form.add_error("file", as_sentence(str(exc)))
        return _new_page(request, upload_form=form)
    if not created and data["voice_id"] and data["voice_id"] != campaign.voice_id:
        messages.info(
            request,
            _(
                "Campaign %(campaign)s already exists; its voice id %(voice)s is kept for these "
                "orders."
            )
            % {
                "campaign": campaign.name,
                "voice": campaign.voice_id or campaign.store.default_voice_id,
            },
        )
    # One check_balance now, so the preview weighs the cost against a fresh balance (the last
    # known one stays if the provider does not answer). Launch asks again.
    refresh_balance(store)
    return redirect("campaign_launch", pk=campaign.pk)


@role_required(LAUNCH)
def campaign_upload_rejected(request: HttpRequest, pk: int) -> HttpResponseBase:
    """Every rejected row of the waiting upload, with its reasons, as CSV."""
    campaign = get_object_or_404(Campaign, pk=pk)
    upload = uploads.pending_upload(campaign)
    if upload is None:
        return redirect("campaign_launch", pk=pk)
    rows = (
        upload.rows.filter(kind=UploadRow.Kind.REJECTED)
        .order_by("row")
        .values_list("row", "reason")
    )

    def lines() -> Iterator[tuple[int, str] | list[str]]:
        yield ["row", "reason"]
        yield from rows.iterator(chunk_size=2000)

    # Not the uploaded file's name: it is the sender's text, unfit for a header. The BOM and
    # the defusing of formula-like cells come with csv_response, as on every export.
    return csv_response(lines(), f"campaign-{pk}-rejected.csv")


# --- Launch ----------------------------------------------------------------------------------


def _reading_page(
    request: HttpRequest, campaign: Campaign, upload: Upload, *, fragment: bool = False
) -> HttpResponse:
    """The launch page while a worker reads the upload, or after it could not (the reason
    said now, in the reader's language)."""
    context = {
        "campaign": campaign,
        "store": campaign.store,
        "reading": upload,
        "read_error": (
            as_sentence(describe(upload.error_code, upload.error_params))
            if upload.status == Upload.Status.FAILED
            else ""
        ),
    }
    template = "campaigns/launch.html" + ("#reading" if fragment else "")
    return render(request, template, context)


def _launch_page(
    request: HttpRequest,
    campaign: Campaign,
    upload: Upload | None,
    *,
    error: str = "",
) -> HttpResponse:
    queued_draft_calls = launches.waiting_draft_calls(campaign)
    to_launch = (upload.valid_rows if upload else 0) + queued_draft_calls
    store = campaign.store
    cost = estimate_cost(upload.valid_rows, store.call_rate) if upload and store.call_rate else None
    context: dict[str, Any] = {
        "campaign": campaign,
        "store": store,
        "upload": upload,
        "estimated_cost": cost,
        "queued_draft_calls": queued_draft_calls,
        "to_launch": to_launch,
        "error": error,
        # Launching outside calling hours queues the calls until the window opens: say when.
        "calls_start": calls_start_sentence(store, _now()),
        # Said before the merchant presses Launch, from the last known balance (no request).
        "balance_short": (
            store.balance is not None
            and (
                store.balance < store.low_balance_threshold
                or (cost is not None and store.balance < cost)
            )
        ),
    }
    if upload is not None:
        rows = upload.rows.order_by("row")
        valid = rows.filter(kind=UploadRow.Kind.VALID)
        # A valid row's reason is its formula warning (uploadrow_unique_kind_row serves it).
        warned = valid.exclude(reason="")
        context |= {
            "formula_rows": warned[:FORMULA_WARNINGS_SHOWN],
            "formula_count": warned.count(),
            "valid_page": Paginator(valid, VALID_ROWS_PER_PAGE).get_page(request.GET.get("page")),
            "rejected": rows.filter(kind=UploadRow.Kind.REJECTED)[:REJECTED_SHOWN],
            "known": uploads.known_rows(upload, SKIPPED_SHOWN),
            "duplicates": rows.filter(kind=UploadRow.Kind.DUPLICATE)[:SKIPPED_SHOWN],
            "rejected_more": max(0, upload.rejected_rows - REJECTED_SHOWN),
            "known_more": max(0, upload.known_rows - SKIPPED_SHOWN),
            "duplicates_more": max(0, upload.duplicate_rows - SKIPPED_SHOWN),
        }
    return render(request, "campaigns/launch.html", context)


def _launch_or_reading_page(
    request: HtmxHttpRequest,
    campaign: Campaign,
    upload: Upload | None,
    unread: Upload | None,
) -> HttpResponse:
    """The launch page's GET: the preview of the waiting upload, or how far a worker has read it
    (the reading's fragment when htmx polls; once it ends, htmx reloads the page)."""
    pk = campaign.pk
    if request.htmx:
        if unread is not None and unread.status == Upload.Status.READING:
            return _reading_page(request, campaign, unread, fragment=True)
        return HttpResponseClientRefresh()
    if unread is not None:
        return _reading_page(request, campaign, unread)
    launched = campaign.status != Campaign.Status.DRAFT or uploads.launching_upload(campaign)
    if upload is None and launched and not launches.waiting_draft_calls(campaign):
        # Launched (Back after Launch, a second tab): its page, not "Nothing to launch".
        return redirect("campaign_detail", pk=pk)
    return _launch_page(request, campaign, upload)


def _discard_upload(
    request: HttpRequest, campaign: Campaign, waiting: Upload | None
) -> HttpResponse:
    """Discard: the waiting upload goes, and a draft campaign with no calls with it."""
    pk = campaign.pk
    if waiting is not None:
        waiting.delete()  # a workbook being read: its worker finds it gone and stops
    if campaign.status == Campaign.Status.DRAFT and not campaign.calls.exists():
        campaign.delete()
        messages.info(
            request,
            _("Upload discarded; the empty campaign %(campaign)s was removed.")
            % {"campaign": campaign.name},
        )
        return redirect("campaign_list")
    messages.info(request, _("Upload discarded; nothing was imported."))
    return redirect("campaign_detail", pk=pk)


def _launch_upload(
    request: HttpRequest, campaign: Campaign, upload: Upload, queued_draft_calls: int
) -> HttpResponse:
    """Launch a previewed upload the balance allows: claimed first, then its rows queued here, or
    by a worker when it is large."""
    pk = campaign.pk
    if not uploads.claim_upload(upload):
        messages.error(
            request,
            _("The upload %(name)s is already launched: not launched again.")
            % {"name": upload.filename},
        )
        return redirect("campaign_detail", pk=pk)
    if upload.valid_rows > settings.ROBODASH_LAUNCH_IN_REQUEST_ROWS:
        # on_commit: the worker must find the claim. No transaction is open here, so it runs
        # at once; said this way, it stays right if the view ever runs in one.
        upload_id = upload.pk
        transaction.on_commit(lambda: tasks.launch_upload.delay(upload_id))
        messages.success(
            request,
            ngettext(
                "Campaign %(campaign)s is launching: %(count)s order is being queued; the "
                "progress is below.",
                "Campaign %(campaign)s is launching: %(count)s orders are being queued; the "
                "progress is below.",
                upload.valid_rows,
            )
            % {"campaign": campaign.name, "count": intcomma(upload.valid_rows)},
        )
        return redirect("campaign_detail", pk=pk)
    was_draft = campaign.status == Campaign.Status.DRAFT
    upload = uploads.launch_upload(upload.pk)
    _say_launched(request, campaign, was_draft, upload, queued_draft_calls)
    return redirect("campaign_detail", pk=pk)


@role_required(LAUNCH)
def campaign_launch(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """GET: the preview of the waiting upload, or how far a worker has read it (the reading's
    fragment when htmx polls; once it ends, htmx reloads the page). POST: check the balance,
    import, run."""
    campaign = get_object_or_404(Campaign.objects.select_related("store"), pk=pk)
    waiting = uploads.waiting_upload(campaign)
    unread = waiting if waiting and waiting.status != Upload.Status.PREVIEWED else None
    upload = waiting if waiting and not unread else None
    if request.method != "POST":
        return _launch_or_reading_page(request, campaign, upload, unread)

    if request.POST.get("action") == "discard":
        return _discard_upload(request, campaign, waiting)

    if unread is not None:
        # Launch pressed on a page from before this upload (another tab): nothing is launched
        # while its rows are unknown.
        messages.error(
            request,
            _("The upload %(name)s has not been read: nothing was launched.")
            % {"name": unread.filename},
        )
        return redirect("campaign_launch", pk=pk)

    if request.POST.get("upload") and (upload is None or request.POST["upload"] != str(upload.pk)):
        # The page's upload was launched (a second press, another tab) or replaced.
        messages.error(
            request,
            _("That upload was already launched or replaced: it is not launched again."),
        )
        return redirect("campaign_detail", pk=pk)

    new_calls = upload.valid_rows if upload else 0
    queued_draft_calls = launches.waiting_draft_calls(campaign)
    if new_calls + queued_draft_calls == 0:
        reason = (
            _(
                "The file has no valid new orders: nothing to launch. Fix the rejected rows and "
                "upload it again."
            )
            if upload
            else _("There is nothing to launch: upload a CSV file or add an order first.")
        )
        return _launch_page(request, campaign, upload, error=reason)

    check = launches.check(campaign, new_calls)
    if not check.ok:
        # Nothing imported, the upload still waits: top up, then press Launch again. The page
        # answers 200 with the reason, as a form with errors does.
        return _launch_page(request, campaign, upload, error=check.message)
    if check.warning:
        messages.warning(request, check.message)

    if upload is None:
        with transaction.atomic():
            started = launches.start(campaign)
        _say_launched(request, campaign, started, None, queued_draft_calls)
        return redirect("campaign_detail", pk=pk)

    return _launch_upload(request, campaign, upload, queued_draft_calls)


def _say_launched(
    request: HttpRequest,
    campaign: Campaign,
    started: bool | int,
    upload: Upload | None,
    queued_draft_calls: int,
) -> None:
    campaign.refresh_from_db(fields=["status"])
    if campaign.status == Campaign.Status.PAUSED:
        parts = [
            _("Campaign %(campaign)s is paused: the new calls wait until you resume it")
            % {"campaign": campaign.name}
        ]
    elif started:
        parts = [_("Campaign %(campaign)s launched") % {"campaign": campaign.name}]
    else:
        parts = [_("Campaign %(campaign)s is running") % {"campaign": campaign.name}]
    if upload is not None:
        # The store's rules kept some of the upload's orders from their call (calls/rules.py):
        # counted among the campaign's orders since the upload, by order_verdict_created_idx.
        kept = dict(
            Order.objects.filter(
                campaign=campaign,
                verdict__in=[Order.Verdict.SKIP, Order.Verdict.HOLD],
                created_at__gte=upload.created_at,
            )
            .order_by()
            .values_list("verdict")
            .annotate(n=Count("id"))
        )
        skipped, held = kept.get(Order.Verdict.SKIP, 0), kept.get(Order.Verdict.HOLD, 0)
        count = max(upload.imported_rows - skipped - held, 0)
        parts.append(
            ngettext("%(count)s call queued", "%(count)s calls queued", count)
            % {"count": intcomma(count)}
        )
        if skipped:
            parts.append(
                ngettext(
                    "%(count)s skipped by the store's rules",
                    "%(count)s skipped by the store's rules",
                    skipped,
                )
                % {"count": intcomma(skipped)}
            )
        if held:
            parts.append(
                ngettext(
                    "%(count)s held for a person by the store's rules",
                    "%(count)s held for a person by the store's rules",
                    held,
                )
                % {"count": intcomma(held)}
            )
    if queued_draft_calls:
        count = queued_draft_calls
        parts.append(
            ngettext("%(count)s waiting call released", "%(count)s waiting calls released", count)
            % {"count": intcomma(count)}
        )
    if upload is not None:
        if count := upload.rejected_rows:
            parts.append(
                ngettext("%(count)s row rejected", "%(count)s rows rejected", count)
                % {"count": intcomma(count)}
            )
        if count := upload.known_rows + upload.known_at_launch:
            parts.append(
                ngettext(
                    "%(count)s already known, not called again",
                    "%(count)s already known, not called again",
                    count,
                )
                % {"count": intcomma(count)}
            )
        if count := upload.duplicate_rows:
            parts.append(
                ngettext(
                    "%(count)s duplicate in this file skipped",
                    "%(count)s duplicates in this file skipped",
                    count,
                )
                % {"count": intcomma(count)}
            )
    separator = pgettext("between the parts of a list", ", ")
    messages.success(request, separator.join(parts) + pgettext("end of a sentence", "."))


# --- A campaign's page, its progress, pause and resume ---------------------------------------


def _keeps_moving(campaign: Campaign, figures: Figures) -> bool:
    """Worth polling: calls with the provider, or queued calls a running campaign will send."""
    return bool(
        figures.in_flight or (figures.queued and campaign.status == Campaign.Status.RUNNING)
    )


def _now() -> dt.datetime:
    """The clock the calling-hours sentences read (a function, so that tests can fix it)."""
    return timezone.now()


def calls_start_sentence(store: Store, now: dt.datetime) -> str:
    """When a store outside its calling hours starts calling, in words; "" inside them.

    "Calls start at 09:00 tomorrow (Asia/Karachi) — calling hours 09:00–21:00."
    """
    if store.in_calling_hours(now):
        return ""
    start = store.next_calling_time(now).astimezone(store.zone)
    today = now.astimezone(store.zone).date()
    words = {
        "time": f"{start:%H:%M}",
        "day": day(start.date()),
        "zone": store.timezone,
        "hours": f"{store.calling_start:%H:%M}–{store.calling_end:%H:%M}",
    }
    # One whole sentence per case, so that each translates as a sentence.
    if start.date() == today:
        sentence = _("Calls start at %(time)s today (%(zone)s) — calling hours %(hours)s.")
    elif start.date() == today + dt.timedelta(days=1):
        sentence = _("Calls start at %(time)s tomorrow (%(zone)s) — calling hours %(hours)s.")
    else:
        sentence = _("Calls start at %(time)s on %(day)s (%(zone)s) — calling hours %(hours)s.")
    return sentence % words


def _campaign_context(request: HttpRequest, campaign: Campaign) -> dict[str, Any]:
    figures = stats.figures_total(campaigns=[campaign.pk])  # the counted figures, all time
    launching = uploads.launching_upload(campaign)
    waiting = figures.queued and campaign.status == Campaign.Status.RUNNING
    finished = has_finished(campaign, figures) and launching is None
    return {
        "campaign": campaign,
        "figures": figures,
        "finished_at": finished_at([campaign]).get(campaign.pk) if finished else None,
        # Queued calls outside calling hours are not stuck: say when they start.
        "calls_start": calls_start_sentence(campaign.store, _now()) if waiting else "",
        "polling": launching is not None or _keeps_moving(campaign, figures),
        "pending": uploads.waiting_upload(campaign),
        "launching": launching,
        "voice_id": campaign.voice_id or campaign.store.default_voice_id,
    }


@role_required(EVERYONE)
def campaign_detail(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign.objects.select_related("store", "created_by"), pk=pk)
    return render(request, "campaigns/detail.html", _campaign_context(request, campaign))


@role_required(EVERYONE)
def campaign_progress(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The progress fragment, polled every 2 s; 286 (stop polling) once nothing moves."""
    if not request.htmx:
        return redirect("campaign_detail", pk=pk)
    campaign = get_object_or_404(Campaign.objects.select_related("store"), pk=pk)
    context = _campaign_context(request, campaign)
    if context["polling"]:
        return render(request, "campaigns/detail.html#progress", context)
    return HttpResponseStopPolling(
        render_to_string("campaigns/detail.html#progress", context, request=request)
    )


@role_required(LAUNCH)
@require_POST
def campaign_pause(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign, pk=pk)
    # Conditional: two admins pressing at once cannot flip it twice.
    if transitions.pause_campaign(pk):
        messages.success(
            request,
            _(
                "Campaign %(campaign)s paused: queued calls wait; calls already with the provider "
                "still finish."
            )
            % {"campaign": campaign.name},
        )
    else:
        messages.error(
            request,
            _("Campaign %(campaign)s is %(status)s, not running: nothing to pause.")
            % {"campaign": campaign.name, "status": campaign.get_status_display().lower()},
        )
    return redirect("campaign_detail", pk=pk)


@role_required(LAUNCH)
@require_POST
def campaign_resume(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign, pk=pk)
    with transaction.atomic():
        resumed = transitions.resume_campaign(pk)
        if resumed:
            wake_dispatcher()  # on commit: the queued calls go out now, not at the next sweep
    if resumed:
        messages.success(request, _("Campaign %(campaign)s resumed.") % {"campaign": campaign.name})
    elif campaign.status == Campaign.Status.DRAFT:
        messages.error(
            request,
            _("Campaign %(campaign)s was never launched: launch it instead.")
            % {"campaign": campaign.name},
        )
    else:
        messages.error(
            request, _("Campaign %(campaign)s is already running.") % {"campaign": campaign.name}
        )
    return redirect("campaign_detail", pk=pk)
