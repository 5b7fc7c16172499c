"""Switching the interface's language: Django's set_language, which also remembers the choice
on a signed-in user's account so that it follows them to any browser. A choice made on the
sign-in page, before anyone is signed in, is kept in the session and saved to the account of
whoever signs in next in it (robodash/sign_in.py), so that the saved language does not undo it."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponseBase
from django.utils.translation import check_for_language
from django.views import i18n
from django.views.decorators.http import require_POST


@login_not_required  # the sign-in page offers the switch too
@require_POST
def set_language(request: HttpRequest) -> HttpResponseBase:
    """POST language=<code> (and next=<path>): Django's view sets the cookie and redirects."""
    response = i18n.set_language(request)
    language = request.POST.get("language", "")
    user = request.user
    known = language in dict(settings.LANGUAGES) and check_for_language(language)
    if not known:
        return response
    if user.is_authenticated:
        save_language(user, language)
    else:
        request.session[CHOSEN_SIGNED_OUT] = language  # signing in keeps the session's data
    return response


CHOSEN_SIGNED_OUT = "language_chosen_signed_out"


def save_language(user: Any, language: str) -> None:
    if user.language != language:
        user.language = language
        user.save(update_fields=["language"])


def keep_language_chosen_signed_out(request: HttpRequest, user: Any) -> None:
    """Signing in: a language chosen on the sign-in page becomes the user's own."""
    chosen = request.session.pop(CHOSEN_SIGNED_OUT, "")
    if chosen in dict(settings.LANGUAGES):
        save_language(user, chosen)
