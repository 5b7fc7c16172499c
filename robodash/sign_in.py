"""Django's sign-in, landing each role where its work is: an agent on the follow-up queue (the
agent's desk), an admin or a manager on the overview. A language chosen on the sign-in page
becomes the user's own (robodash/language.py)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.views import LoginView
from django.http import HttpResponse
from django.urls import reverse

from robodash.language import keep_language_chosen_signed_out


class SignInView(LoginView):
    """A `next` that names a page is followed; the bare site address, which the sign-in
    redirect gives anyone who opened it, is no page choice: the role's own page it is."""

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        keep_language_chosen_signed_out(self.request, form.get_user())
        return response

    def get_default_redirect_url(self) -> str:
        # The user model is calls.User; robodash/ does not import the apps above it.
        if getattr(self.request.user, "role", None) == get_user_model().Role.AGENT:
            return reverse("followup_list")
        return reverse("overview")

    def get_redirect_url(self) -> str:
        chosen = super().get_redirect_url()
        return "" if chosen == reverse("overview") else chosen
