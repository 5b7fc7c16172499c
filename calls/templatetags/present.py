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
from django.utils.translation import gettext_lazy as _lazy

from calls import formatting
from calls.formatting import MISSING, money, when
from calls.models import Call, Order, OrderEvent, Store
from calls.pipeline import outcomes
from calls.pipeline.balances import provider_states
from calls.pipeline.provider import in_plain_words
from calls.transitions import DeliveryVerdict

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
    formatting.verdict_reasons,
    formatting.previewed_rule,
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
    if key == "outcome":
        return _("Outcome"), _choice_words(Call.Outcome, value)
    if key == "notice_of":  # a notice call's creation (calls/notices.py)
        return _("Notice"), _choice_words(Call.NoticeOf, value)
    if key in ("decision", "previous"):
        return (_("Decision") if key == "decision" else _("Was")), _choice_words(
            Order.Decision, value
        )
    if key == "reason":
        return _("Why"), str(value)
    if key == "phone_cap":  # rescheduled past the store's daily cap (calls/pipeline/phone_cap.py)
        return _("Why"), formatting.phone_cap_reached(value)
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


def _choice_words(choices: Any, value: Any) -> str:
    """A stored code in the reader's words (an unknown one as it is)."""
    try:
        return str(choices(value).label)
    except ValueError:
        return str(value)


# Why an order left the follow-up queue (OrderEvent followup_closed's `why`).
_CLOSED_WHY = {
    "confirmed": _lazy("the customer pressed 1 (confirmed)"),
    "cancelled": _lazy("the customer pressed 2 (cancelled)"),
    "withdrawn": _lazy("the call was withdrawn"),
    "decided": _lazy("decided by hand"),
    "policy": _lazy("cancelled by the store's rule"),
    "reopened": _lazy("the call is with the provider after all"),
    "shipped": _lazy("the parcel left: there is nothing left to decide"),
}


def _delivery_event_value(key: str, value: Any, zone: Any) -> tuple[str, str] | None:
    """A parcel update's values (OrderEvent delivery / delivery_ignored, written by
    calls/transitions.py record_delivery): its `via` and `previous` are the parcel's, not a
    decision's, and its `why` is the verdict that set it aside."""
    if key == "delivery":
        return _("Parcel"), _choice_words(Order.Delivery, value)
    if key == "via":
        return _("From"), _choice_words(Order.DeliveryVia, value)
    if key == "delivery_at":
        try:
            return _("At"), when(dt.datetime.fromisoformat(str(value)), zone)
        except ValueError:
            return None
    if key == "tracking":
        return _("Tracking"), str(value)
    if key == "previous" and value:
        return _("Was"), _choice_words(Order.Delivery, value)
    if key == "current":
        return _("Parcel is"), _choice_words(Order.Delivery, value)
    if key == "why":
        # The verdict's own words say it all ("Ignored: the parcel is further along").
        return _choice_words(DeliveryVerdict, value), ""
    return None


_PARCEL_EVENTS = {OrderEvent.Kind.DELIVERY, OrderEvent.Kind.DELIVERY_IGNORED}
# A parcel update read in the order a person says it (the stored values come back in jsonb's
# order, shortest key first): what, when, from where, then what it replaced or lost to.
_PARCEL_ORDER = ("delivery", "delivery_at", "via", "tracking", "previous", "why", "current")


def _parcel_place(item: tuple[str, Any]) -> int:
    return _PARCEL_ORDER.index(item[0]) if item[0] in _PARCEL_ORDER else len(_PARCEL_ORDER)


def _order_event_value(key: str, value: Any, zone: Any) -> tuple[str, str] | None:
    if key == "reason":
        return _("Why"), _choice_words(Order.FollowUp, value)
    if key == "why":
        return _("Why"), str(_CLOSED_WHY.get(value, value))
    if key == "via":
        return _("How"), _choice_words(Order.DecidedVia, value)
    if key == "previous_via":
        return _("Was decided"), _choice_words(Order.DecidedVia, value)
    if key == "previous_by":
        return _("Was decided by"), str(value)
    if key == "attempts":
        return _("Attempts"), str(value)
    if key == "call":
        return _("Call"), f"#{value}"
    if key in ("callback_at",):
        try:
            return _("Call back at"), when(dt.datetime.fromisoformat(str(value)), zone)
        except ValueError:
            return None
    if key in ("phone", "old_phone"):
        return (_("New number") if key == "phone" else _("Old number")), formatting.phone(value)
    if key == "previous" and value:
        return _("Was"), _choice_words(Order.Decision, value)
    if key == "next":
        return (_("by Next order"), "") if value else None
    if key == "verdict":  # judged at intake (calls/rules.py)
        return _("Verdict"), _choice_words(Order.Verdict, value)
    if key == "reasons":
        return _("Rules"), formatting.verdict_reasons(value)
    return _event_value(key, value, zone)


@register.simple_tag
def event_details(event: Any, zone: Any = None) -> list[tuple[str, str]]:
    """The event's data a merchant can read, as (label, value) pairs in words: a call's event,
    or an order's."""
    read = _event_value
    values = list((event.data or {}).items())
    if isinstance(event, OrderEvent):
        read = _order_event_value
        if event.kind in _PARCEL_EVENTS:
            read = _delivery_event_value
            values.sort(key=_parcel_place)
    details = []
    for key, value in values:
        pair = read(key, value, zone)
        if pair is not None:
            details.append(pair)
    return details


@register.simple_tag
def decided_by(order: Any) -> str:
    """Who decided the order and how, in words."""
    if order.decided_via == Order.DecidedVia.KEY:
        return _("the customer, by key press")
    if order.decided_via == Order.DecidedVia.POLICY:
        return _("the store's rule: no answer after every attempt")
    if order.decided_via == Order.DecidedVia.AGENT:
        name = order.decided_by.username if order.decided_by else _("an agent")
        return _("%(name)s, by hand") % {"name": name}
    return ""


@register.simple_tag
def provider_state(store: Any) -> str:
    """The store's provider state as the pages word it (calls.pipeline.balances.provider_states):
    "rejected", "unreachable", "ok" or "" (no recent refresh)."""
    return provider_states([store])[store.pk]
