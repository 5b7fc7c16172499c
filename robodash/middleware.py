"""Request and response rules that hold for every page: bounded bodies, no caching of
signed-in pages, htmx requests that meet sign-in or a refusal, and the client's address as the
TLS proxy saw it."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.contrib.messages import constants as message_constants
from django.contrib.messages.storage.base import Message
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseForbidden
from django.shortcuts import resolve_url
from django.template.loader import render_to_string
from django.urls import Resolver404, ResolverMatch, resolve
from django.utils import translation
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext, gettext_noop
from django_htmx.http import HttpResponseClientRedirect, reswap, retarget

Middleware = Callable[[HttpRequest], HttpResponseBase]


# The pages whose body is an uploaded file, by URL name.
UPLOADS = frozenset({"campaign_upload", "store_delivery_sheet"})


def _resolved(path: str) -> ResolverMatch | None:
    try:
        return resolve(path)
    except Resolver404:
        return None


def body_limit(request: HttpRequest) -> int:
    """The largest body `request`'s path accepts: an upload's (the new campaign's file, a
    store's courier sheet), or every other form's."""
    match = _resolved(request.path_info)  # the middleware runs before the URL is resolved
    if match is not None and match.url_name in UPLOADS:
        return settings.ROBODASH_MAX_UPLOAD_BODY_BYTES
    return settings.ROBODASH_MAX_BODY_BYTES


class RequestBodyLimitMiddleware:
    """Refuse an oversized body from its Content-Length alone, before anything reads it.

    Sits ahead of the session and CSRF middleware, so an anonymous POST to the sign-in page is
    refused as early as a signed-in upload. A body without a length (chunked) could not be
    bounded before reading it, so it is refused too: browsers always send the length.
    """

    def __init__(self, get_response: Middleware) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if "HTTP_TRANSFER_ENCODING" in request.META:
            return HttpResponse(
                "A request body must say its length (Content-Length).\n",
                status=411,
                content_type="text/plain",
            )
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return HttpResponse("Bad Content-Length.\n", status=400, content_type="text/plain")
        limit = body_limit(request)
        if length > limit:
            # The servers close the connection after a response that left the body unread
            # (gunicorn's sync workers after every request, runserver when it sees one).
            return HttpResponse(
                f"The request is {length:,} bytes; at most {limit:,} are accepted here.\n",
                status=413,
                content_type="text/plain",
            )
        return self.get_response(request)


class NoStoreWhenSignedInMiddleware:
    """Signed-in pages and exports carry customers' phone numbers and orders: no browser or
    proxy may keep a copy (`Cache-Control: no-store`)."""

    def __init__(self, get_response: Middleware) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if request.user.is_authenticated:
            add_never_cache_headers(response)
        return response


class UserLanguageMiddleware:
    """A signed-in user's saved language (User.language) wins over the browser's.

    Runs after LocaleMiddleware (which chose from the cookie or Accept-Language) and after
    AuthenticationMiddleware; a user with no saved language keeps LocaleMiddleware's choice.
    """

    def __init__(self, get_response: Middleware) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        language = getattr(request.user, "language", "")
        if language and request.user.is_authenticated:
            translation.activate(language)
            request.LANGUAGE_CODE = language
        return self.get_response(request)


def client_ip(request: HttpRequest) -> str | None:
    """The address sign-in failures are counted against (django-axes).

    Behind the TLS proxy every request comes from the proxy's address, so the client's is the
    last entry of X-Forwarded-For: the one the proxy appended itself (a client can prepend
    anything it likes, but not that one). Without a proxy, the socket's address.
    """
    if settings.BEHIND_TLS_PROXY:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        last = forwarded.rsplit(",", 1)[-1].strip()
        if last:
            return last
    return request.META.get("REMOTE_ADDR")


class HtmxSignInAndRefusalMiddleware:
    """What an htmx request gets when the answer is not the fragment it asked for.

    htmx follows a redirect inside its request and swaps whatever arrives, so a signed-out
    session (expired, or signed out in another tab) would paste the sign-in form into a table
    row, and it swaps nothing at all on an error, so a refusal would go unseen. Here, once for
    every view:
    - a redirect to sign-in (LoginRequiredMiddleware's), or a refusal to a signed-out session
      (a CSRF failure after signing out), becomes HX-Redirect: the whole page goes to sign-in,
      with `next` the page the person was on (HX-Current-URL), not the fragment's URL;
    - any other 403 becomes the page's message area (#messages) saying so, which
      static/js/robodash.js swaps in although the status is an error.
    Sits inside HtmxMiddleware (it reads request.htmx) and outside LoginRequiredMiddleware.
    """

    def __init__(self, get_response: Middleware) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if not getattr(request, "htmx", False):
            return response
        if _is_sign_in_redirect(response) or (
            response.status_code == 403 and not request.user.is_authenticated
        ):
            page = request.htmx.current_url_abs_path or "/"  # type: ignore[attr-defined]
            return HttpResponseClientRedirect(redirect_to_login(page).url)
        if response.status_code == 403:
            refusal = render_to_string(
                "calls/_messages.html",
                {"messages": [Message(message_constants.ERROR, gettext(REFUSED_MESSAGE))]},
                request=request,
            )
            return reswap(retarget(HttpResponseForbidden(refusal), "#messages"), "outerHTML")
        return response


REFUSED_MESSAGE = gettext_noop(
    "That was refused: you may not do this, or this page is out of date. "
    "Reload the page and try again."
)


def _is_sign_in_redirect(response: HttpResponseBase) -> bool:
    if response.status_code not in (301, 302, 303, 307, 308):
        return False
    location = urlsplit(response["Location"])
    return location.path == resolve_url(settings.LOGIN_URL)
