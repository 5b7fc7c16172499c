"""A store's block list on its settings (admins): the phones whose new orders the store's rules
hold for a person (calls/rules.py), with why, who blocked them and when; a phone blocked by hand,
or unblocked. An order's page blocks and unblocks its own phone (calls/views/orders.py).

The list shows the newest LIST_LIMIT phones and how many there are in all; a phone further down
is found by typing it."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from calls import formatting
from calls.block_list import BlockRefused, block_phone, unblock_phone
from calls.forms import BlockPhoneForm, as_sentence
from calls.models import BlockedPhone, Store
from calls.permissions import SETTINGS, role_required
from calls.phones import InvalidPhone, normalize_pk_mobile
from calls.views import HtmxHttpRequest, signed_in_user

LIST_LIMIT = 100


def _list_page(
    request: HttpRequest, store: Store, form: BlockPhoneForm, *, status: int = 200
) -> HttpResponse:
    rows = BlockedPhone.objects.filter(store=store).select_related("created_by")
    wanted = request.GET.get("phone", "").strip()[:40]
    not_a_phone = ""
    if wanted:
        try:
            rows = rows.filter(phone=normalize_pk_mobile(wanted))
        except InvalidPhone as exc:
            not_a_phone = as_sentence(str(exc))
            rows = rows.none()
    context = {
        "store": store,
        "form": form,
        "blocked": list(rows.order_by("-created_at", "-id")[:LIST_LIMIT]),
        "total": BlockedPhone.objects.filter(store=store).count(),
        "limit": LIST_LIMIT,
        "wanted": wanted,
        "not_a_phone": not_a_phone,
    }
    return render(request, "settings/blocked_phones.html", context, status=status)


@role_required(SETTINGS)
@require_GET
def store_blocked_phones(request: HttpRequest, pk: int) -> HttpResponse:
    store = get_object_or_404(Store, pk=pk)
    return _list_page(request, store, BlockPhoneForm())


@role_required(SETTINGS)
@require_POST
def store_block_phone(request: HttpRequest, pk: int) -> HttpResponse:
    """A phone blocked by hand (or, already blocked, given the new reason)."""
    store = get_object_or_404(Store, pk=pk)
    form = BlockPhoneForm(request.POST)
    if form.is_valid():
        try:
            row, created = block_phone(
                store,
                form.cleaned_data["phone"],
                form.cleaned_data["reason"],
                by=signed_in_user(request),
            )
        except InvalidPhone as refused:
            form.add_error("phone", as_sentence(str(refused)))
        except BlockRefused as refused:
            form.add_error("reason", as_sentence(str(refused)))
        else:
            words = {"phone": formatting.phone(row.phone), "store": store.name}
            if created:
                text = _("%(phone)s is blocked at %(store)s: its new orders are held for a person.")
            else:
                text = _("%(phone)s was blocked at %(store)s already: its reason is updated.")
            messages.success(request, text % words)
            return redirect("store_blocked_phones", pk=store.pk)
    return _list_page(request, store, form, status=400)


@role_required(SETTINGS)
@require_POST
def store_unblock_phone(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """A phone taken off the block list: its new orders are judged like any other's. The orders
    it already has held stay held (a person decides each)."""
    store = get_object_or_404(Store, pk=pk)
    try:
        phone = normalize_pk_mobile(request.POST.get("phone", "")[:40])
    except InvalidPhone as refused:
        messages.error(request, _("Not unblocked: %(reason)s") % {"reason": refused})
    else:
        words = {"phone": formatting.phone(phone), "store": store.name}
        if unblock_phone(store, phone):
            messages.success(
                request,
                _("%(phone)s is unblocked at %(store)s; orders it already has stay held.") % words,
            )
        else:
            messages.info(request, _("%(phone)s was not blocked at %(store)s.") % words)
    if request.htmx:
        # The row goes (hx-swap="outerHTML" with nothing), the message comes out of band.
        return HttpResponse(render_to_string("calls/_out_of_band.html", request=request))
    return redirect("store_blocked_phones", pk=store.pk)
