"""What every page's navigation needs: which sections the user may open, which one is current,
and the open follow-up count for the roles that work the queue."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from django.http import HttpRequest

from calls.permissions import CALL_ACTIONS, LAUNCH, REPORTS, SETTINGS, user_can

# URL name prefixes -> the navigation section they belong to.
_SECTIONS = (
    ("overview", "overview"),
    ("call_", "calls"),
    ("order_", "orders"),
    ("followup_", "followups"),
    ("campaign_", "campaigns"),
    ("report", "reports"),
    ("settings", "settings"),
    ("store_", "settings"),
    ("user_", "settings"),
)


def _section(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    name = (match.url_name or "") if match else ""
    for prefix, section in _SECTIONS:
        if name.startswith(prefix):
            return section
    return ""


def _open_followup_counter() -> Callable[[], int]:
    @cache
    def count() -> int:
        from calls.views.followups import open_followups

        # One COUNT over the partial index order_followup_queue_idx (same predicate).
        return open_followups().count()

    return count


def navigation(request: HttpRequest) -> dict[str, object]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    works_queue = user_can(user, CALL_ACTIONS)
    context: dict[str, object] = {
        "nav": {
            "section": _section(request),
            "works_queue": works_queue,
            "can_launch": user_can(user, LAUNCH),
            "sees_reports": user_can(user, REPORTS),
            "changes_settings": user_can(user, SETTINGS),
        }
    }
    if works_queue:
        # A callable the template calls only where it shows the count, once per request:
        # fragments polled every few seconds never pay for it.
        context["open_followups"] = _open_followup_counter()
    return context
