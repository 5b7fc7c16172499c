"""Settings (admins only): stores with their provider keys and calling rules, and users.

The API key is write-only: no page renders it, and a blank key field keeps the stored key. A new
key is checked with the provider when it is saved (StoreForm): a key the provider rejects is
refused unless the admin saves it deliberately with the store paused; a provider that cannot be
reached lets it be saved, unverified. Verify asks the provider the same way
(calls.pipeline.balances.check_key, as add_store does too) with the stored key, or with a key just
typed so it can be checked before it is saved, and its card is redrawn with the result.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from calls.forms import RULE_FIELDS, StoreForm, UserForm, rules_preview_form
from calls.models import BlockedPhone, Store, User
from calls.permissions import SETTINGS, role_required
from calls.pipeline.balances import STATE_AFTER_CHECK, KeyCheck, check_key, note_provider_state
from calls.pipeline.provider import in_plain_words
from calls.rule_preview import preview
from calls.views import HtmxHttpRequest
from calls.views.delivery_sheets import sheet_context


@role_required(SETTINGS)
def settings_index(request: HttpRequest) -> HttpResponse:
    # Bounded by nature: a merchant has a few stores and a team, not thousands.
    context = {
        "stores": Store.objects.order_by("name"),
        "users": User.objects.order_by("username"),
    }
    return render(request, "settings/index.html", context)


def _store_form_page(
    request: HttpRequest, form: StoreForm, store: Store | None, **extra: Any
) -> HttpResponse:
    # The name as saved: a rejected submit must not retitle the page with what was typed.
    saved_name = Store.objects.get(pk=store.pk).name if store and form.errors else None
    context = {
        "form": form,
        "store": store,
        "saved_name": saved_name or (store and store.name),
        # The rules are drawn together, with their preview (templates/settings/_rules.html).
        "rule_fields": [form[name] for name in RULE_FIELDS],
        "rule_names": RULE_FIELDS,
        **extra,
    }
    if store is not None:
        context |= sheet_context(store)  # the courier-sheet section (views/delivery_sheets.py)
        context["blocked_count"] = BlockedPhone.objects.filter(store=store).count()
    return render(request, "settings/store_form.html", context)


# The Verify card's words for each answer (templates/settings/store_form.html).
_VERIFY_RESULT = {
    KeyCheck.ACCEPTED: "matched",
    KeyCheck.REJECTED: "not_matched",
    KeyCheck.UNREACHABLE: "unreachable",
}


def _say_saved(request: HttpRequest, form: StoreForm, store: Store, *, added: bool) -> None:
    """The store was added or saved, and what the provider said of a new key, in plain words.
    One whole sentence per case, so that each translates as a sentence."""
    name = {"name": store.name}
    if form.key_check is KeyCheck.ACCEPTED:
        text = (
            _("Store %(name)s added: the provider accepted its new API key.")
            if added
            else _("Store %(name)s saved: the provider accepted its new API key.")
        )
        messages.success(request, text % name)
    elif form.key_check is KeyCheck.REJECTED:
        text = (
            _(
                "Store %(name)s added and paused: the provider rejected its new API key, so "
                "nothing is dialled. Enter a key that works, then untick Paused."
            )
            if added
            else _(
                "Store %(name)s saved and paused: the provider rejected its new API key, so "
                "nothing is dialled. Enter a key that works, then untick Paused."
            )
        )
        messages.warning(request, text % name)
    elif form.key_check is KeyCheck.UNREACHABLE:
        text = (
            _(
                "Store %(name)s added, but the provider could not be reached to check its new "
                "API key: it is saved unverified. Press Verify key once the provider answers."
            )
            if added
            else _(
                "Store %(name)s saved, but the provider could not be reached to check its new "
                "API key: it is saved unverified. Press Verify key once the provider answers."
            )
        )
        messages.warning(request, text % name)
    else:
        text = _("Store %(name)s added.") if added else _("Store %(name)s saved.")
        messages.success(request, text % name)


@role_required(SETTINGS)
def store_new(request: HttpRequest) -> HttpResponse:
    form = StoreForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        store = form.save()
        _say_saved(request, form, store, added=True)
        return redirect("store_edit", pk=store.pk)
    return _store_form_page(request, form, None)


@role_required(SETTINGS)
def store_edit(request: HttpRequest, pk: int) -> HttpResponse:
    store = get_object_or_404(Store, pk=pk)
    form = StoreForm(request.POST or None, instance=store)
    if request.method == "POST" and form.is_valid():
        store = form.save()
        _say_saved(request, form, store, added=False)
        return redirect("store_edit", pk=store.pk)
    return _store_form_page(request, form, store)


@role_required(SETTINGS)
@require_POST
def store_rules_preview(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """What the rules typed on the store's settings page (not saved) would have done to its last
    30 days of orders (calls/rule_preview.py). htmx asks for the preview alone as a rule is
    changed; without JavaScript the Preview button submits the whole form here, and the page
    comes back as typed, with the preview and nothing saved."""
    store = get_object_or_404(Store, pk=pk)
    # A copy of the store takes the typed rules; the saved one is never touched.
    rules = rules_preview_form(Store.objects.get(pk=pk), request.POST)
    previewing = rules.instance if rules.is_valid() else None
    context = {
        "preview": preview(previewing) if previewing is not None else None,
        "preview_form": rules,
        "previewed": previewing,
    }
    if request.htmx:
        return render(request, "settings/_rule_preview.html", {"store": store, **context})
    # The key is write-only: never sent back, so the page asks for it again (key_dropped).
    typed = request.POST.copy()
    key_dropped = bool(typed.pop("api_key", [""])[0].strip())
    form = StoreForm(typed, instance=Store.objects.get(pk=pk))
    return _store_form_page(request, form, store, key_dropped=key_dropped, **context)


@role_required(SETTINGS)
@require_POST
def store_verify(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Ask the provider about the stored key, or one just typed: matched, not matched, or the
    provider could not be reached."""
    store = get_object_or_404(Store, pk=pk)
    typed_key = request.POST.get("api_key", "").strip()
    checking_stored_key = not typed_key
    key = typed_key or store.api_key
    result: str
    detail = ""
    if not key:
        result, detail = "missing", _("This store has no API key yet.")
    else:
        answer = check_key(key)
        result = _VERIFY_RESULT[answer.verdict]
        if answer.error is not None:
            # The provider's own message is for the logs; the page gets a sentence.
            detail = in_plain_words(answer.error)
        if checking_stored_key:
            # The page says at once what the provider said of the stored key.
            note_provider_state(store, STATE_AFTER_CHECK[answer.verdict])
            if answer.verdict is not KeyCheck.UNREACHABLE:
                store.key_verified_at = timezone.now() if answer.balance else None
                Store.objects.filter(pk=store.pk).update(key_verified_at=store.key_verified_at)
    context = {
        "store": store,
        "result": result,
        "detail": detail,
        "checked_typed_key": not checking_stored_key,
    }
    if request.htmx:
        # The card, and the page's provider state out of band: both say the new answer.
        card = render_to_string("settings/store_form.html#verify-card", context, request)
        state = render_to_string(
            "settings/store_form.html#provider-state", {**context, "oob": True}, request
        )
        return HttpResponse(card + state)
    text = {
        "matched": _("API key matched: the provider accepts it."),
        "not_matched": _("API key not matched: the provider rejected this key."),
        "unreachable": _("The key could not be checked: %(detail)s Try again in a minute.")
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
