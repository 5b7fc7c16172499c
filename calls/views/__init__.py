"""The dashboard's pages, one module per area."""

from django.http import HttpRequest, HttpResponseRedirect
from django.utils.http import url_has_allowed_host_and_scheme
from django_htmx.middleware import HtmxDetails

from calls.models import User


class HtmxHttpRequest(HttpRequest):
    """A request as our views see it: django-htmx's middleware has set `request.htmx`."""

    htmx: HtmxDetails


def signed_in_user(request: HttpRequest) -> User:
    """The signed-in user (LoginRequiredMiddleware has already turned anonymous users away)."""
    user = request.user
    if not isinstance(user, User):
        raise TypeError("a signed-in robodash user is required here")
    return user


def redirect_to_next(request: HttpRequest, fallback: str) -> HttpResponseRedirect:
    """After a form's POST: back to the page its `next` field names, if it is one of ours, else
    to `fallback`."""
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = fallback
    return HttpResponseRedirect(next_url)
