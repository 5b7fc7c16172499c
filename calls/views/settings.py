"""Settings (admins only): stores with their provider keys and calling rules, and users.

The API key is write-only: no page renders it, a blank key field keeps the stored key, and
Verify asks the provider's user_verify with the stored key (or with a key just typed, so it can
be checked before it is saved).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from calls.balances import balance_status_key
from calls.forms import StoreForm, UserForm
from calls.models import Store, User
from calls.permissions import SETTINGS, role_required
from calls.provider import ProviderError, RobocallClient
from calls.views import HtmxHttpRequest


@role_required(SETTINGS)
def settings_index(request: HttpRequest) -> HttpResponse:
    # Bounded by nature: a merchant has a few stores and a team, not thousands.
    context = {
        "stores": Store.objects.order_by("name"),
        "users": User.objects.order_by("username"),
    }
    return render(request, "settings/index.html", context)


def _store_form_page(request: HttpRequest, form: StoreForm, store: Store | None) -> HttpResponse:
    # The name as saved: a rejected submit must not retitle the page with what was typed.
    saved_name = Store.objects.get(pk=store.pk).name if store and form.errors else None
    context = {"form": form, "store": store, "saved_name": saved_name or (store and store.name)}
    return render(request, "settings/store_form.html", context)


@role_required(SETTINGS)
def store_new(request: HttpRequest) -> HttpResponse:
    form = StoreForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        store = form.save()
        messages.success(
            request, _("Store %(name)s added. Verify its API key below.") % {"name": store.name}
        )
        return redirect("store_edit", pk=store.pk)
    return _store_form_page(request, form, None)


@role_required(SETTINGS)
def store_edit(request: HttpRequest, pk: int) -> HttpResponse:
    store = get_object_or_404(Store, pk=pk)
    form = StoreForm(request.POST or None, instance=store)
    if request.method == "POST" and form.is_valid():
        key_changed = form.key_changed
        store = form.save()
        if key_changed:
            # The last refresh was of the old account: beat.s next one asks for the new.
            cache.delete(balance_status_key(store.pk))
        messages.success(
            request,
            (
                _("Store %(name)s saved with its new API key; verify it below.")
                if key_changed
                else _("Store %(name)s saved.")
            )
            % {"name": store.name},
        )
        return redirect("store_edit", pk=store.pk)
    return _store_form_page(request, form, store)


@role_required(SETTINGS)
@require_POST
def store_verify(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Ask user_verify: matched, not matched, or the provider could not be reached."""
    store = get_object_or_404(Store, pk=pk)
    typed_key = request.POST.get("api_key", "").strip()
    checking_stored_key = not typed_key
    key = typed_key or store.api_key
    result: str
    detail = ""
    if not key:
        result, detail = "missing", _("This store has no API key yet.")
    else:
        try:
            with RobocallClient(key) as client:
                matched = client.verify_key()
        except ProviderError as exc:
            result, detail = "unreachable", str(exc)  # str() of a ProviderError is redacted
        else:
            result = "matched" if matched else "not_matched"
    if result == "matched" and checking_stored_key:
        store.key_verified_at = timezone.now()
        Store.objects.filter(pk=store.pk).update(key_verified_at=store.key_verified_at)
    context = {
        "store": store,
        "result": result,
        "detail": detail,
        "checked_typed_key": not checking_stored_key,
    }
    if request.htmx:
        return render(request, "settings/store_form.html#verify-result", context)
    text = {
        "matched": _("API key matched: the provider accepts it."),
        "not_matched": _("API key not matched: the provider does not know this key."),
        "unreachable": _("The provider could not be reached to verify the key (%(detail)s).")
        % {"detail": detail},
        "missing": detail,
    }[result]
    if result == "matched":
        messages.success(request, text)
    else:
        messages.error(request, text)
    return redirect("store_edit", pk=store.pk)


def _user_form_page(request: HttpRequest, form: UserForm, account: User | None) -> HttpResponse:
    saved_name = User.objects.get(pk=account.pk).username if account and form.errors else None
    context = {
        "form": form,
        "account": account,
        "saved_name": saved_name or (account and account.username),
    }
    return render(request, "settings/user_form.html", context)


@role_required(SETTINGS)
def user_new(request: HttpRequest) -> HttpResponse:
    actor = request.user
    assert isinstance(actor, User)
    form = UserForm(request.POST or None, acting_user=actor)
    if request.method == "POST" and form.is_valid():
        account = form.save()
        messages.success(
            request,
            _("User %(name)s added as %(role)s.")
            % {"name": account.username, "role": account.get_role_display()},
        )
        return redirect("settings")
    return _user_form_page(request, form, None)


@role_required(SETTINGS)
def user_edit(request: HttpRequest, pk: int) -> HttpResponse:
    actor = request.user
    assert isinstance(actor, User)
    account = get_object_or_404(User, pk=pk)
    form = UserForm(request.POST or None, instance=account, acting_user=actor)
    if request.method == "POST" and form.is_valid():
        account = form.save()
        if account.pk == actor.pk and form.cleaned_data.get("password"):
            # Changing one's own password would otherwise sign the admin out.
            update_session_auth_hash(request, account)
        messages.success(request, _("User %(name)s saved.") % {"name": account.username})
        return redirect("settings")
    return _user_form_page(request, form, account)
