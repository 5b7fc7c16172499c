"""Switching the interface's language: Django's set_language, which also remembers the choice
on a signed-in user's account so that it follows them to any browser."""

from __future__ import annotations

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
    if user.is_authenticated and known and user.language != language:
        user.language = language
        user.save(update_fields=["language"])
    return response
