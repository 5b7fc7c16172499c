"""How every page shows phones, money, times, days, rates and the provider's codes: one style.

    {% load present %}
    {{ call.phone|phone }}              0300 1234567
    {{ figures.charges|money }}         Rs 1,234.00
    {{ call.created_at|when:zone }}     29 Nov 2026, 13:33   (in `zone`, a name or a ZoneInfo)
    {{ day|day }}                       29 Nov 2026
    {{ figures.answer_rate|percent }}   60.0%
    {{ call|provider_answer }}          Answered, pressed 1 (confirm)

Phones, money, times, days and counts are calls/formatting.py's, which code outside templates
uses too; this module makes them filters and adds what only pages show (the provider's codes,
reasons and a timeline's events in words).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django import template
from django.utils.translation import gettext as _

from calls import formatting
from calls.formatting import MISSING, money, when
from calls.models import Store
from calls.pipeline import outcomes
from calls.pipeline.balances import provider_states
from calls.pipeline.provider import in_plain_words

register = template.Library()

# The words themselves are calls/formatting.py's; the filters only make them reachable from a
# template.
for formatter in (
    formatting.phone,
    formatting.money,
    formatting.when,
    formatting.ago,
    formatting.day,
    formatting.percent,
    formatting.count,
    formatting.retry_delays,
):
    register.filter(formatter.__name__, formatter)


@register.filter
def provider_answer(call: Any) -> str:
    """The provider's last report on a call, in words."""
    if call.call_status is None:
        return MISSING
    return outcomes.provider_answer_in_words(call.call_status, call.dtmf)


@register.filter
def plain_provider_error(text: str) -> str:
    """A stored provider failure (a call's last error) as a merchant reads it."""
    return in_plain_words(text) if text else ""


@register.filter
def pause_reason(kind: str) -> str:
    """Why robodash paused a store (its `pause_kind`), in plain words; "" for none. The raw
    detail stays in `paused_reason` and the logs, for support."""
    if kind == Store.PauseKind.KEY_REJECTED:
        return _("The provider rejected this store's API key. Update the key, then resume.")
    if kind == Store.PauseKind.PROVIDER_UNUSABLE:
        return _("robodash could not use the provider; support can see the detail.")
    return ""


_NO_FINAL_STATUS = re.compile(
    r"^the provider reported no final status within \d+ s of sending \(last status (\w+)"
)
_UNCLEAR_SEND = "; the call may or may not have been placed, so it was not sent again"


@register.filter
def review_reason(text: str) -> str:
    """Why a call needs a person, in plain words (the stored reason may quote the provider)."""
    if not text:
        return ""
    stuck = _NO_FINAL_STATUS.match(text)
    if stuck:
        last = stuck.group(1)
        status = outcomes.status_in_words(int(last)) if last.isdigit() else None
        return _("The provider gave no final answer in time (last: %(status)s).") % {
            "status": (status or _("nothing")).lower()
        }
    if text.endswith(_UNCLEAR_SEND):
        return _(
            "The provider's answer to sending was unclear: the call may or may not have been "
            "placed, so it was not sent again."
        )
    return in_plain_words(text)


# --- The timeline: each event's data as words -------------------------------------------------


def _event_value(key: str, value: Any, zone: Any) -> tuple[str, str] | None:
    if key == "call_status":
        return _("Provider"), outcomes.status_in_words(value)
    if key == "dtmf":
        return _("Key"), outcomes.key_in_words(value)
    if key == "retry":
        return _("Provider retries so far"), str(value)
    if key == "call_charges":
        return _("Charges"), money(value)
    if key in ("scheduled_for", "retry_at"):
        try:
            return _("Until") if key == "scheduled_for" else _("Next try"), when(
                dt.datetime.fromisoformat(str(value)), zone
            )
        except ValueError:
            return None
    if key == "error":
        return _("Problem"), in_plain_words(str(value))
    if key == "attempt":
        return _("Attempt"), str(value)
    if key in ("child", "parent"):
        return (_("New call") if key == "child" else _("From call")), f"#{value}"
    if key in ("outcome", "decision", "previous"):
        label = {"outcome": _("Outcome"), "decision": _("Decision"), "previous": _("Was")}[key]
        return label, str(value).replace("_", " ")
    if key == "reason":
        return _("Why"), str(value)
    if key == "note":
        return _("Note"), str(value)
    if key in ("late", "reopened", "reattempt"):
        words = {
            "late": _("accepted late"),
            "reopened": _("reopened"),
            "reattempt": _("re-attempt"),
        }
        return (words[key], "") if value else None
    # provider_call_id, error_kind and the like are for support: on the call page's raw section.
    return None


@register.simple_tag
def event_details(event: Any, zone: Any = None) -> list[tuple[str, str]]:
    """The event's data a merchant can read, as (label, value) pairs in words."""
    details = []
    for key, value in (event.data or {}).items():
        pair = _event_value(key, value, zone)
        if pair is not None:
            details.append(pair)
    return details


@register.simple_tag
def provider_state(store: Any) -> str:
    """The store's provider state as the pages word it (calls.pipeline.balances.provider_states):
    "rejected", "unreachable", "ok" or "" (no recent refresh)."""
    return provider_states([store])[store.pk]
