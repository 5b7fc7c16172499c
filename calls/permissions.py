"""Who may do what. Checked on the server for every page, fragment, action and export.

| role    | overview, calls | call actions, follow-ups | launch, pause | reports, export | settings
| admin   | yes             | yes                      | yes           | yes             | yes
| agent   | yes             | yes                      | no            | no              | no
| manager | yes             | no                       | no            | yes             | no
"""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseBase

ADMIN, AGENT, MANAGER = "admin", "agent", "manager"
EVERYONE = (ADMIN, AGENT, MANAGER)
# Call again, withdraw, mark handled, claim; the follow-up queue; Retry of a failed write-back,
# which sends the order's decision (often the agent's own) to the shop again and changes nothing
# else: the shop's credentials and address stay settings, for admins.
CALL_ACTIONS = (ADMIN, AGENT)
LAUNCH = (ADMIN,)  # create, launch, pause and resume campaigns
REPORTS = (ADMIN, MANAGER)  # reports and every CSV export
SETTINGS = (ADMIN,)


def user_can(user: Any, roles: tuple[str, ...]) -> bool:
    return bool(user.is_authenticated and user.role in roles)


def role_required(
    roles: tuple[str, ...],
) -> Callable[[Callable[..., HttpResponseBase]], Callable[..., HttpResponseBase]]:
    """403 for a signed-in user whose role is not in `roles` (anonymous users never get here:
    LoginRequiredMiddleware sends them to the sign-in page first)."""

    def decorator(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if not user_can(request.user, roles):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
