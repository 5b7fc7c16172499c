"""Campaigns: the list, a new campaign (one order, or a CSV upload -> preview -> launch), a
campaign's page with its live progress, and pause / resume.

An upload is kept as a file under var/uploads/ between its preview and "Launch"; the session
holds only the file's random name, per campaign. Nothing is imported before "Launch", and a
launch the balance cannot pay for imports nothing: the campaign stays a draft with the file
waiting, so the merchant can top up and press "Launch" again.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseStopPolling

from calls import stats
from calls.balances import check_launch, refresh_balance
from calls.dispatch import wake_dispatcher
from calls.forms import SingleOrderForm, UploadForm, as_sentence
from calls.imports import ImportFileError, Preview, create_single_call, import_csv, preview_csv
from calls.models import Call, Campaign, Store, User
from calls.permissions import EVERYONE, LAUNCH, role_required
from calls.stats import Figures
from calls.views import HtmxHttpRequest

CAMPAIGNS_PER_PAGE = 25
UPLOADS_SESSION_KEY = "robodash_uploads"  # {campaign pk: {"token": hex, "filename": str}}
UPLOAD_TOKEN = re.compile(r"[0-9a-f]{32}")
UPLOAD_MAX_AGE_SECONDS = 2 * 24 * 3600  # abandoned previews are swept after two days


# --- Uploaded files between preview and launch -----------------------------------------------


def uploads_dir() -> Path:
    return Path(settings.VAR_DIR) / "uploads"


@dataclass(frozen=True)
class PendingUpload:
    token: str
    filename: str

    @property
    def path(self) -> Path:
        return uploads_dir() / f"{self.token}.csv"


def _sweep_old_uploads() -> None:
    cutoff = time.time() - UPLOAD_MAX_AGE_SECONDS
    for path in uploads_dir().glob("*.csv"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
        except OSError:  # another process swept it first
            continue


def _keep_upload(upload: UploadedFile) -> PendingUpload:
    directory = uploads_dir()
    directory.mkdir(parents=True, exist_ok=True)
    _sweep_old_uploads()
    pending = PendingUpload(token=uuid4().hex, filename=Path(upload.name or "upload.csv").name)
    with pending.path.open("wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    return pending


def _pending_upload(request: HttpRequest, campaign: Campaign) -> PendingUpload | None:
    entry = request.session.get(UPLOADS_SESSION_KEY, {}).get(str(campaign.pk))
    if not isinstance(entry, dict) or not UPLOAD_TOKEN.fullmatch(str(entry.get("token", ""))):
        return None
    pending = PendingUpload(token=entry["token"], filename=str(entry.get("filename", "")))
    return pending if pending.path.is_file() else None


def _remember_upload(request: HttpRequest, campaign: Campaign, pending: PendingUpload) -> None:
    _forget_upload(request, campaign)  # a new file replaces the one waiting
    uploads = dict(request.session.get(UPLOADS_SESSION_KEY, {}))
    uploads[str(campaign.pk)] = {"token": pending.token, "filename": pending.filename}
    request.session[UPLOADS_SESSION_KEY] = uploads


def _forget_upload(request: HttpRequest, campaign: Campaign) -> None:
    pending = _pending_upload(request, campaign)
    if pending is not None:
        pending.path.unlink(missing_ok=True)
    uploads = dict(request.session.get(UPLOADS_SESSION_KEY, {}))
    if uploads.pop(str(campaign.pk), None) is not None:
        request.session[UPLOADS_SESSION_KEY] = uploads


def _preview(pending: PendingUpload, campaign: Campaign) -> Preview:
    with pending.path.open("rb") as file:
        return preview_csv(file, campaign=campaign)


def _acting_user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)  # LoginRequiredMiddleware and role_required ran first
    return user


# --- The list and the new-campaign page ------------------------------------------------------


@role_required(EVERYONE)
def campaign_list(request: HttpRequest) -> HttpResponse:
    campaigns = Campaign.objects.select_related("store").order_by("-created_at", "-id")
    page = Paginator(campaigns, CAMPAIGNS_PER_PAGE).get_page(request.GET.get("page"))
    # The page's campaigns, all time: their closed days from the rollups, the rest live.
    figures = stats.figures_grouped("campaign", campaigns=[c.pk for c in page.object_list])
    rows = [(campaign, figures.get(campaign.pk, Figures())) for campaign in page.object_list]
    return render(request, "campaigns/list.html", {"page": page, "rows": rows})


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
    user = _acting_user(request)
    try:
        with transaction.atomic():
            campaign, _ = Campaign.objects.get_or_create(
                store=store, name=data["campaign_name"], defaults={"created_by": user}
            )
            call = _create_call(campaign, data, user)
    except ValidationError as exc:
        for field, errors in exc.message_dict.items():
            target = field if field in form.fields else None
            for error in errors:
                form.add_error(target, as_sentence(error))
        return _new_page(request, order_form=form)
    if check.message.startswith("Warning"):
        messages.warning(request, check.message)
    if campaign.status == Campaign.Status.RUNNING:
        messages.success(
            request, f"Order {call.order_id} queued: the call to {call.phone} starts shortly."
        )
    else:
        messages.warning(
            request,
            f"Order {call.order_id} queued, but campaign {campaign.name} is "
            f"{campaign.get_status_display().lower()}: it is called once the campaign runs.",
        )
    return redirect("campaign_detail", pk=campaign.pk)


def _create_call(campaign: Campaign, data: dict[str, Any], user: User) -> Call:
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
    """Keep the file, then show what importing it would do (on the launch page)."""
    if request.method != "POST":
        return redirect("campaign_new")
    form = UploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return _new_page(request, upload_form=form)
    data = form.cleaned_data
    store = data["store"]
    pending = _keep_upload(data["file"])
    existing = Campaign.objects.filter(store=store, name=data["campaign_name"]).first()
    try:
        with pending.path.open("rb") as file:
            preview_csv(file, campaign=existing, store=store)
    except ImportFileError as exc:
        pending.path.unlink(missing_ok=True)
        form.add_error("file", as_sentence(str(exc)))
        return _new_page(request, upload_form=form)
    campaign, created = Campaign.objects.get_or_create(
        store=store,
        name=data["campaign_name"],
        defaults={
            # A draft until launched: the dispatcher sends calls of running campaigns only.
            "status": Campaign.Status.DRAFT,
            "voice_id": data["voice_id"],
            "created_by": _acting_user(request),
        },
    )
    if not created and data["voice_id"] and data["voice_id"] != campaign.voice_id:
        messages.info(
            request,
            f"Campaign {campaign.name} already exists; its voice id "
            f"{campaign.voice_id or campaign.store.default_voice_id} is kept for these orders.",
        )
    _remember_upload(request, campaign, pending)
    # One check_balance now, so the preview weighs the cost against a fresh balance (the last
    # known one stays if the provider does not answer). Launch asks again.
    refresh_balance(store)
    return redirect("campaign_launch", pk=campaign.pk)


# --- Launch ----------------------------------------------------------------------------------


def _waiting_draft_calls(campaign: Campaign) -> int:
    """Calls already in a never-launched campaign (e.g. imported by the command): Launch
    releases them too."""
    if campaign.status != Campaign.Status.DRAFT:
        return 0
    return campaign.calls.filter(state=Call.State.QUEUED).count()


def _launch_page(
    request: HttpRequest,
    campaign: Campaign,
    pending: PendingUpload | None,
    *,
    error: str = "",
) -> HttpResponse:
    preview = _preview(pending, campaign) if pending else None
    queued_draft_calls = _waiting_draft_calls(campaign)
    to_launch = (preview.valid_rows if preview else 0) + queued_draft_calls
    store = campaign.store
    cost = preview.estimated_cost if preview else None
    context = {
        "campaign": campaign,
        "store": store,
        "pending": pending,
        "preview": preview,
        "queued_draft_calls": queued_draft_calls,
        "to_launch": to_launch,
        "error": error,
        # Said before the merchant presses Launch, from the last known balance (no request).
        "balance_short": (
            store.balance is not None
            and (
                store.balance < store.low_balance_threshold
                or (cost is not None and store.balance < cost)
            )
        ),
    }
    return render(request, "campaigns/launch.html", context)


@role_required(LAUNCH)
def campaign_launch(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the preview of the waiting upload. POST: check the balance, import, run."""
    campaign = get_object_or_404(Campaign.objects.select_related("store"), pk=pk)
    pending = _pending_upload(request, campaign)
    if request.method != "POST":
        return _launch_page(request, campaign, pending)

    if request.POST.get("action") == "discard":
        _forget_upload(request, campaign)
        if campaign.status == Campaign.Status.DRAFT and not campaign.calls.exists():
            campaign.delete()
            messages.info(
                request, f"Upload discarded; the empty campaign {campaign.name} was removed."
            )
            return redirect("campaign_list")
        messages.info(request, "Upload discarded; nothing was imported.")
        return redirect("campaign_detail", pk=pk)

    preview = _preview(pending, campaign) if pending else None
    queued_draft_calls = _waiting_draft_calls(campaign)
    n_calls = (preview.valid_rows if preview else 0) + queued_draft_calls
    if n_calls == 0:
        reason = (
            "The file has no valid new orders: nothing to launch. Fix the rejected rows and "
            "upload it again."
            if pending
            else "There is nothing to launch: upload a CSV file or add an order first."
        )
        return _launch_page(request, campaign, pending, error=reason)

    check = check_launch(campaign.store, n_calls)
    if not check.ok:
        # Nothing imported, the file still waits: top up, then press Launch again. The page
        # answers 200 with the reason, as a form with errors does.
        return _launch_page(request, campaign, pending, error=check.message)

    imported = 0
    try:
        with transaction.atomic():
            if pending:
                with pending.path.open("rb") as file:
                    report = import_csv(file, campaign=campaign, created_by=_acting_user(request))
                imported = report.imported
            # Launching starts a draft; a campaign someone paused stays paused (its new calls
            # wait with the others until a person resumes it).
            started = Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.DRAFT).update(
                status=Campaign.Status.RUNNING
            )
            wake_dispatcher()  # on commit
    except ImportFileError as exc:
        return _launch_page(request, campaign, pending, error=as_sentence(str(exc)))
    _forget_upload(request, campaign)
    campaign.refresh_from_db(fields=["status"])
    if campaign.status == Campaign.Status.PAUSED:
        parts = [f"Campaign {campaign.name} is paused: the new calls wait until you resume it"]
    else:
        parts = [f"Campaign {campaign.name} {'launched' if started else 'is running'}"]
    if pending:
        parts.append(f"{imported:,} calls queued")
    if queued_draft_calls:
        parts.append(f"{queued_draft_calls:,} waiting calls released")
    if preview and preview.rejected:
        parts.append(f"{len(preview.rejected):,} rows rejected")
    if preview and preview.known:
        parts.append(f"{len(preview.known):,} already known, not called again")
    if preview and preview.duplicates:
        parts.append(f"{len(preview.duplicates):,} duplicates in this file skipped")
    messages.success(request, ", ".join(parts) + ".")
    if check.message.startswith("Warning"):
        messages.warning(request, check.message)
    return redirect("campaign_detail", pk=campaign.pk)


# --- A campaign's page, its progress, pause and resume ---------------------------------------


def _keeps_moving(campaign: Campaign, figures: Figures) -> bool:
    """Worth polling: calls with the provider, or queued calls a running campaign will send."""
    return bool(
        figures.in_flight or (figures.queued and campaign.status == Campaign.Status.RUNNING)
    )


def _campaign_context(request: HttpRequest, campaign: Campaign) -> dict[str, Any]:
    figures = stats.figures_of(campaign.calls.all())
    return {
        "campaign": campaign,
        "figures": figures,
        "polling": _keeps_moving(campaign, figures),
        "pending": _pending_upload(request, campaign),
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
    # Conditional update: two admins pressing at once cannot flip it twice.
    paused = Campaign.objects.filter(pk=pk, status=Campaign.Status.RUNNING).update(
        status=Campaign.Status.PAUSED
    )
    if paused:
        messages.success(
            request,
            f"Campaign {campaign.name} paused: queued calls wait; calls already with the "
            "provider still finish.",
        )
    else:
        messages.error(
            request,
            f"Campaign {campaign.name} is {campaign.get_status_display().lower()}, not running: "
            "nothing to pause.",
        )
    return redirect("campaign_detail", pk=pk)


@role_required(LAUNCH)
@require_POST
def campaign_resume(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign, pk=pk)
    with transaction.atomic():
        resumed = Campaign.objects.filter(pk=pk, status=Campaign.Status.PAUSED).update(
            status=Campaign.Status.RUNNING
        )
        if resumed:
            wake_dispatcher()  # on commit: the queued calls go out now, not at the next sweep
    if resumed:
        messages.success(request, f"Campaign {campaign.name} resumed.")
    elif campaign.status == Campaign.Status.DRAFT:
        messages.error(request, f"Campaign {campaign.name} was never launched: launch it instead.")
    else:
        messages.error(request, f"Campaign {campaign.name} is already running.")
    return redirect("campaign_detail", pk=pk)
