"""The forms of the campaign, report and settings pages.

Each form says what is wrong field by field, and a bound form re-renders what was typed, so a
bad submit loses nothing. The one exception is the provider API key: it is write-only and never
rendered back (not even after an error), so the forms ask for it again instead.
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.forms.utils import flatatt
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from calls.intake.rows import parse_amount
from calls.models import UPLOAD_FILE_MAX_BYTES, Store, User
from calls.phones import InvalidPhone, normalize_pk_mobile
from calls.pipeline.balances import (
    STATE_AFTER_CHECK,
    KeyCheck,
    check_key,
    note_provider_state,
)
from calls.pipeline.provider import AccountBalance
from calls.rule_preview import PREVIEWED_SETTINGS

MAX_UPLOAD_BYTES = UPLOAD_FILE_MAX_BYTES  # far above any day's orders; keeps a stray file out
MAX_REPORT_DAYS = 366


def as_sentence(message: str) -> str:
    """Our validators speak in lower-case clauses ("phone '03' is too short"); forms show
    sentences."""
    message = message.strip()
    if not message:
        return message
    message = message[0].upper() + message[1:]
    return message if message.endswith((".", "!", "?")) else message + "."


class BoundedDateField(forms.DateField):
    """A day between 2000 and 2099: nothing robodash keeps is older, and a far-future day would
    overflow the date arithmetic of the filters (a day after 9999-12-31 does not exist)."""

    EARLIEST = dt.date(2000, 1, 1)
    LATEST = dt.date(2099, 12, 31)

    def validate(self, value: Any) -> None:
        super().validate(value)
        if value and not self.EARLIEST <= value <= self.LATEST:
            raise ValidationError(
                _("Choose a day between %(first)s and %(last)s.")
                % {"first": f"{self.EARLIEST:%Y-%m-%d}", "last": f"{self.LATEST:%Y-%m-%d}"}
            )


class StoreDaysFilterForm(forms.Form):
    """A list page's filter by store and by a range of days (the Calls and Orders pages): the
    days in the chosen store's zone, or the default store zone. Invalid fields are shown and
    ignored by the page."""

    store = forms.ModelChoiceField(queryset=Store.objects.all(), required=False, label=_("Store"))
    date_from = BoundedDateField(required=False, label=_("From"))
    date_to = BoundedDateField(required=False, label=_("To"))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", _("The end date is before the start date."))
        return cleaned

    def zone(self) -> zoneinfo.ZoneInfo:
        """Dates are days in the chosen store's zone, or the default store zone."""
        store = self.cleaned_data.get("store") if self.is_valid() else None
        if store is not None:
            return store.zone
        return zoneinfo.ZoneInfo(settings.ROBODASH_DEFAULT_STORE_TIMEZONE)

    def export_naming(self) -> dict[str, Any]:
        """What an export of this filter is named after (calls.exports.export_filename): the
        store, the range, and today in the filter's zone."""
        data = self.cleaned_data
        return {
            "store": data.get("store"),
            "first": data.get("date_from"),
            "last": data.get("date_to"),
            "today": timezone.now().astimezone(self.zone()).date(),
        }

    def within_store_and_days(self, rows: QuerySet[Any]) -> QuerySet[Any]:
        """`rows` (with a `store` and a `created_at`) of the chosen store and days."""
        data = self.cleaned_data if self.is_bound else {}
        if data.get("store"):
            rows = rows.filter(store=data["store"])
        zone = self.zone()
        if data.get("date_from"):
            start = dt.datetime.combine(data["date_from"], dt.time.min, tzinfo=zone)
            rows = rows.filter(created_at__gte=start)
        if data.get("date_to"):
            next_day = data["date_to"] + dt.timedelta(days=1)
            rows = rows.filter(created_at__lt=dt.datetime.combine(next_day, dt.time.min, zone))
        return rows


class StoreChoiceField(forms.ModelChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(queryset=Store.objects.order_by("name"), **kwargs)


def refused_not_cut(field: forms.Field) -> None:
    """No maxlength on the field's input: a browser would cut a longer pasted text to it
    without a word. The form refuses such a text instead, naming the limit."""
    field.widget.attrs.pop("maxlength", None)


NAME_TOO_LONG = _("At most %(limit_value)d characters: this name has %(show_value)d.")


class SingleOrderForm(forms.Form):
    store = StoreChoiceField(empty_label=None, label=_("Store"))
    campaign_name = forms.CharField(
        label=_("Campaign name"),
        max_length=200,
        initial="Single orders",
        help_text=_("Orders with the same campaign name are reported together."),
    )
    phone = forms.CharField(
        max_length=40, label=_("Phone"), help_text=_("A Pakistani mobile, e.g. 0300 1234567.")
    )
    amount = forms.CharField(
        max_length=20, label=_("Amount"), help_text=_("Rupees, e.g. 1500 or 1,500.50.")
    )
    order_id = forms.CharField(max_length=100, label=_("Order id"))
    store_name = forms.CharField(
        max_length=200,
        required=False,
        label=_("Store name read out"),
        help_text=_("Blank: the store's name."),
        error_messages={"max_length": NAME_TOO_LONG},
    )
    voice_id = forms.IntegerField(
        required=False, min_value=1, label=_("Voice id"), help_text=_("Blank: the store's default.")
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        refused_not_cut(self.fields["store_name"])

    def clean_phone(self) -> str:
        # Checked here too (create_single_call checks again) so the reason shows at once.
        raw = str(self.cleaned_data["phone"])
        try:
            normalize_pk_mobile(raw)
        except InvalidPhone as exc:
            raise ValidationError(as_sentence(str(exc))) from None
        return raw

    def clean_amount(self) -> Decimal:
        try:
            return parse_amount(str(self.cleaned_data["amount"]))
        except ValueError as exc:
            raise ValidationError(as_sentence(str(exc))) from None


class UploadForm(forms.Form):
    store = StoreChoiceField(empty_label=None, label=_("Store"))
    campaign_name = forms.CharField(max_length=200, label=_("Campaign name"))
    voice_id = forms.IntegerField(
        required=False, min_value=1, label=_("Voice id"), help_text=_("Blank: the store's default.")
    )
    file = forms.FileField(
        label=_("CSV or Excel file"),
        help_text=_("A .csv (UTF-8) or .xlsx file with the columns explained below."),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.xlsx,text/csv"}),
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise ValidationError(
                _(
                    "The file is %(size)s MB; the limit is %(limit)s MB. Split it into several "
                    "campaigns."
                )
                % {
                    "size": f"{upload.size / 1024 / 1024:.1f}",
                    "limit": MAX_UPLOAD_BYTES // 1024 // 1024,
                }
            )
        if not upload.size:
            raise ValidationError(_("The file is empty."))
        return upload


class DeliverySheetForm(forms.Form):
    """A courier's sheet of parcels, on a store's page: within the upload's own limits."""

    file = forms.FileField(
        label=_("Courier sheet (CSV or Excel)"),
        help_text=_(
            "The parcels report of PostEx, Leopards, TCS, Trax, M&P, Call Courier or any "
            "courier: a column of order ids and one of statuses, whatever their headers say."
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.xlsx,text/csv"}),
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise ValidationError(
                _(
                    "The file is %(size)s MB; the limit is %(limit)s MB. Split it into several "
                    "sheets."
                )
                % {
                    "size": f"{upload.size / 1024 / 1024:.1f}",
                    "limit": MAX_UPLOAD_BYTES // 1024 // 1024,
                }
            )
        if not upload.size:
            raise ValidationError(_("The file is empty."))
        return upload


class ReportFilterForm(forms.Form):
    PERIODS = (("day", _("By day")), ("week", _("By week")))

    store = forms.ModelChoiceField(
        queryset=Store.objects.order_by("name"),
        required=False,
        empty_label=_("All stores"),
        label=_("Store"),
    )
    date_from = BoundedDateField(label=_("From"), widget=forms.DateInput(attrs={"type": "date"}))
    date_to = BoundedDateField(label=_("To"), widget=forms.DateInput(attrs={"type": "date"}))
    period = forms.ChoiceField(choices=PERIODS, required=False)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        first, last = cleaned.get("date_from"), cleaned.get("date_to")
        if isinstance(first, dt.date) and isinstance(last, dt.date):
            if first > last:
                self.add_error("date_to", _("The end date is before the start date."))
            elif (last - first).days + 1 > MAX_REPORT_DAYS:
                self.add_error(
                    "date_to",
                    _("Choose at most %(days)s days; export year by year.")
                    % {"days": MAX_REPORT_DAYS},
                )
        cleaned["period"] = cleaned.get("period") or "day"
        return cleaned


MAX_RETRY_DELAY_MINUTES = 24 * 60


def parse_retry_delays(text: str) -> list[int]:
    """'5, 10, 30' (minutes) -> [300, 600, 1800] (seconds, as stored), or a ValidationError
    naming the bad part. A part like '30s' is seconds: a delay that is not whole minutes (set
    by the portal or a command) is shown that way, so saving the form keeps it."""
    parts = [part.strip() for part in text.split(",")]
    if not text.strip() or any(part == "" for part in parts):
        raise ValidationError(
            _("Give the retry delays in minutes separated by commas, e.g. 5, 10, 30.")
        )
    delays = []
    for part in parts:
        seconds = part[:-1].strip() if part.lower().endswith("s") else None
        number = part if seconds is None else seconds
        if not number.isdigit() or int(number) <= 0:
            raise ValidationError(
                _(
                    "“%(part)s” is not a positive whole number of minutes; "
                    "write the delays like 5, 10, 30."
                )
                % {"part": part[:20]}
            )
        value = int(number) if seconds is not None else int(number) * 60
        if value > MAX_RETRY_DELAY_MINUTES * 60:
            raise ValidationError(
                _("“%(part)s” is more than a day; a retry delay is at most %(most)s minutes.")
                % {"part": part[:20], "most": f"{MAX_RETRY_DELAY_MINUTES:,}"}
            )
        delays.append(value)
    return delays


def retry_delays_as_minutes(delays: list[int]) -> str:
    """The stored seconds as the form shows them: '5, 10, 30' ('45s' if not whole minutes)."""
    return ", ".join(str(d // 60) if d % 60 == 0 else f"{d}s" for d in delays)


@functools.cache
def _zone_names() -> tuple[str, ...]:
    # available_timezones() walks the tz database's files: once per process is enough.
    first = settings.ROBODASH_DEFAULT_STORE_TIMEZONE
    return (first, *sorted(zone for zone in zoneinfo.available_timezones() if zone != first))


def time_zone_choices() -> list[tuple[str, str]]:
    """Every zone zoneinfo knows, Pakistan's first (most stores are there), then by name."""
    return [(zone, zone) for zone in _zone_names()]


class ZoneSelect(forms.Select):
    """A <select> of some 600 zones, written directly: Django's per-option templates take
    about 80 ms for that many, on every store page."""

    def render(
        self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None
    ) -> SafeString:
        chosen = str(value[0] if isinstance(value, list | tuple) and value else value or "")
        options = format_html_join(
            "",
            '<option value="{}"{}>{}</option>',
            ((zone, " selected" if zone == chosen else "", label) for zone, label in self.choices),
        )
        final_attrs = self.build_attrs(self.attrs, attrs)
        return format_html('<select name="{}"{}>{}</select>', name, flatatt(final_attrs), options)


KEY_REJECTED = _(
    "The provider rejected this key: it does not match a Robo Call account. Check it in the "
    "Robo Call portal, or save it anyway with the store paused."
)


# The store's rules at intake (calls/rules.py), drawn together on its settings page under the
# rules' preview (calls/rule_preview.py), in this order.
RULE_FIELDS = (
    "call_min_amount",
    "call_max_amount",
    "trust_after",
    "hold_after_returns",
    "stale_after_hours",
    "first_call_delay_minutes",
    "max_calls_per_phone_per_day",
)


class StoreForm(forms.ModelForm):
    api_key = forms.CharField(
        label=_("API key"),
        required=False,
        strip=True,
        max_length=200,
        # Write-only: never rendered back, not even after a failed submit.
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )
    save_rejected_key_paused = forms.BooleanField(
        required=False,
        label=_("Save a key the provider rejects anyway, with the store paused"),
        help_text=_("Nothing is dialled until the store is resumed with a key that works."),
    )
    timezone = forms.ChoiceField(
        label=_("Time zone"),
        choices=time_zone_choices,
        widget=ZoneSelect,
        error_messages={"invalid_choice": _("'%(value)s' is not a known time zone; pick one.")},
    )
    retry_delays = forms.CharField(
        label=_("Retry delays (minutes)"),
        help_text=_("One per provider retry, as in the portal's Call Settings, e.g. 5, 10, 30."),
    )

    # The rest follow in Meta.fields order.
    field_order = ["name", "api_key", "save_rejected_key_paused"]

    class Meta:
        model = Store
        fields = [
            "name",
            "default_voice_id",
            "timezone",
            "calling_start",
            "calling_end",
            "provider_retries",
            "retry_delays",
            "reattempts",
            "reattempt_gap_minutes",
            "after_last_attempt",
            "low_balance_threshold",
            "return_cost",
            "notify_on_shipped",
            "notify_on_cancelled",
            *RULE_FIELDS,
            "paused",
        ]
        labels = {
            "default_voice_id": _("Default voice id"),
            "calling_start": _("Calling hours start"),
            "calling_end": _("Calling hours end"),
            "provider_retries": _("Provider retries"),
            "reattempts": _("Re-attempts after an unanswered order"),
            "reattempt_gap_minutes": _("Minutes between re-attempts"),
            "after_last_attempt": _("After the last attempt"),
            "low_balance_threshold": _("Low-balance threshold (Rs)"),
            "return_cost": _("Cost of a returned parcel (Rs)"),
            "notify_on_shipped": _("Voice id of the shipped notice"),
            "notify_on_cancelled": _("Voice id of the cancelled notice"),
            "call_min_amount": _("Call orders of at least (Rs)"),
            "call_max_amount": _("Call orders of at most (Rs)"),
            "trust_after": _("Trust a customer after this many delivered orders"),
            "hold_after_returns": _("Hold a customer's orders after this many returns"),
            "stale_after_hours": _("Hold an order arriving this many hours after it was placed"),
            "first_call_delay_minutes": _("Wait this many minutes before an order's first call"),
            "max_calls_per_phone_per_day": _("Calls to one phone in a day, at most"),
            "paused": _("Paused (no calls are sent)"),
        }
        help_texts = {
            "calling_end": _("In the store's time zone. The same time as the start: any hour."),
            "default_voice_id": _(
                "The provider's recorded message to use when a campaign or row names none."
            ),
            "low_balance_threshold": _("Below this balance, launching is blocked. 0 or more."),
            "return_cost": _(
                "What one parcel refused at the door costs you (shipping both ways, the stock's "
                "time): the reports price the returns avoided with it. 0 or more."
            ),
            "notify_on_shipped": _(
                "A recorded message telling the customer their order has shipped: robodash "
                "calls once when it learns an order shipped, inside calling hours (charged like "
                "any call; it asks nothing and changes nothing). Blank: no such call."
            ),
            "notify_on_cancelled": _(
                "A recorded message telling the customer the shop cancelled their order: "
                "robodash calls once when the shop cancels an order. Blank: no such call."
            ),
            "reattempts": _(
                "0 is off. When an order ends unreachable or with no key pressed after the "
                "provider's free retries, call it again up to this many more times (each a new "
                "call, and a new charge), inside calling hours."
            ),
            "reattempt_gap_minutes": _("At least this long after the last attempt ended."),
            "call_min_amount": _(
                "A new order below this amount is not called: it is skipped, and the shop told "
                "so. Blank: no minimum."
            ),
            "call_max_amount": _(
                "A new order above this amount is not called: it is skipped. Blank: no maximum."
            ),
            "trust_after": _(
                "A phone with this many delivered orders at this store and none returned is "
                "not called: its new orders are skipped. Blank: off."
            ),
            "hold_after_returns": _(
                "A phone with this many returned orders at this store is not called: its new "
                "orders are held in the follow-up queue for a person. Blank: off."
            ),
            "stale_after_hours": _(
                "An order the shop placed longer ago than this when robodash received it (a "
                "shop's backlog after an outage) is held in the follow-up queue, not called. "
                "An order with no placed time is never held for this. Blank: off."
            ),
            "first_call_delay_minutes": _(
                "A new order's call waits this long after the order arrived (and for calling "
                "hours), so a customer who cancels or corrects it first is not called. Blank: "
                "call at once."
            ),
            "max_calls_per_phone_per_day": _(
                "Every call to one phone counts (verification, notices, re-attempts, by hand), "
                "per day in the store's time zone; a call past it waits for the next day's "
                "calling hours. Blank: no cap."
            ),
            "after_last_attempt": _(
                "An order still unreachable or without a key pressed once every attempt is used "
                "up: an agent decides it from the follow-up queue (the shop is tagged no "
                "answer meanwhile), or it is cancelled and the shop is told so."
            ),
        }
        error_messages = {"name": {"max_length": NAME_TOO_LONG}}
        widgets = {
            "calling_start": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "calling_end": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "low_balance_threshold": forms.NumberInput(attrs={"min": "0", "step": "0.01"}),
            "return_cost": forms.NumberInput(attrs={"min": "0", "step": "0.01"}),
            "notify_on_shipped": forms.NumberInput(attrs={"min": "1"}),
            "notify_on_cancelled": forms.NumberInput(attrs={"min": "1"}),
            "call_min_amount": forms.NumberInput(attrs={"min": "0", "step": "0.01"}),
            "call_max_amount": forms.NumberInput(attrs={"min": "0", "step": "0.01"}),
            "trust_after": forms.NumberInput(attrs={"min": "1"}),
            "hold_after_returns": forms.NumberInput(attrs={"min": "1"}),
            "stale_after_hours": forms.NumberInput(attrs={"min": "1"}),
            "first_call_delay_minutes": forms.NumberInput(attrs={"min": "1", "max": "10080"}),
            "max_calls_per_phone_per_day": forms.NumberInput(attrs={"min": "1"}),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.creating = self.instance.pk is None
        refused_not_cut(self.fields["name"])
        self.key_check: KeyCheck | None = None
        self.balance: AccountBalance | None = None
        delays = self.instance.retry_delays
        if isinstance(delays, list) and not self.is_bound:
            self.initial["retry_delays"] = retry_delays_as_minutes(delays)
        zone = self.instance.timezone
        choices = time_zone_choices()
        if zone and zone not in dict(choices):  # a zone saved before the picker: keep it
            choices.insert(1, (zone, zone))
        self.fields["timezone"].choices = choices  # type: ignore[attr-defined]
        optional_fields = (
            "reattempts",
            "reattempt_gap_minutes",
            "after_last_attempt",
            "return_cost",
        )
        for optional in optional_fields:
            self.fields[optional].required = False
        if self.creating:
            self.fields["api_key"].required = True
            self.fields["api_key"].help_text = _(
                "From the Robo Call portal. It is checked with the provider and stored encrypted."
            )
        else:
            self.fields["api_key"].help_text = _(
                "Write-only: the current key is never shown. Leave blank to keep it. A new key "
                "is checked with the provider when you save."
            )

    def clean_api_key(self) -> str:
        key = str(self.cleaned_data.get("api_key") or "")
        # Never echo the key in a message: it would land on the page.
        if any(ch.isspace() for ch in key):
            raise ValidationError(_("The API key cannot contain spaces; paste it again."))
        return key

    def clean_reattempts(self) -> int:
        # Left out (an older form, a script): the policy stays off.
        value = self.cleaned_data.get("reattempts")
        return 0 if value is None else int(value)

    def clean_reattempt_gap_minutes(self) -> int:
        value = self.cleaned_data.get("reattempt_gap_minutes")
        if value is None:
            return self.instance.reattempt_gap_minutes or Store.reattempt_gap_minutes.field.default
        return int(value)

    def clean_after_last_attempt(self) -> str:
        # Left out (an older form, a script): what the store has, the queue for a new one.
        value = self.cleaned_data.get("after_last_attempt")
        return str(value or self.instance.after_last_attempt or Store.AfterLastAttempt.QUEUE)

    def clean_return_cost(self) -> Decimal:
        # Left out or blank: no cost known, so the reports price no returns avoided.
        value = self.cleaned_data.get("return_cost")
        return Decimal("0.00") if value is None else value

    def clean_retry_delays(self) -> list[int]:
        return parse_retry_delays(str(self.cleaned_data.get("retry_delays", "")))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        delays, retries = cleaned.get("retry_delays"), cleaned.get("provider_retries")
        if isinstance(delays, list) and isinstance(retries, int) and len(delays) > retries:
            self.add_error(
                "retry_delays",
                ngettext(
                    "Give one delay for the %(retries)s retry, not %(delays)s.",
                    "Give one delay for each of the %(retries)s retries, not %(delays)s.",
                    retries,
                )
                % {"retries": retries, "delays": len(delays)},
            )
        return cleaned

    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]  # the model's rules (validators, Store.clean)
        key = self.cleaned_data.get("api_key")
        # Asked only of an otherwise valid form, the model's rules included: a typo elsewhere
        # costs no provider request.
        if key and not self.errors:
            paused_if_rejected = bool(self.cleaned_data.get("save_rejected_key_paused"))
            self._check_key(key, paused_if_rejected=paused_if_rejected)

    def _check_key(self, key: str, *, paused_if_rejected: bool) -> None:
        """Accepted (its balance kept), rejected (refused unless saving it paused was chosen),
        or the provider could not be reached (saved unverified). Only our own words reach the
        page: the provider's text may quote the key or be raw JSON."""
        answer = check_key(key)
        self.key_check, self.balance = answer.verdict, answer.balance
        if answer.verdict is KeyCheck.REJECTED and not paused_if_rejected:
            self.add_error("api_key", KEY_REJECTED)

    @property
    def key_rejected(self) -> bool:
        """The typed key was refused: the page then offers saving it paused."""
        return self.key_check is KeyCheck.REJECTED

    def save(self, commit: bool = True) -> Store:
        store: Store = super().save(commit=False)
        key = self.cleaned_data.get("api_key")
        if key:
            store.api_key = key  # encrypts, and marks the key unverified
            # The remembered balance belonged to the old account.
            store.balance = None
            store.balance_username = ""
            store.call_rate = None
            store.balance_checked_at = None
            if self.key_check is KeyCheck.ACCEPTED and self.balance is not None:
                store.key_verified_at = store.balance_checked_at = timezone.now()
                store.balance = self.balance.balance
                store.balance_username = self.balance.username[:100]
                store.call_rate = self.balance.call_rate
            elif self.key_check is KeyCheck.REJECTED:
                store.paused = True
                store.pause_kind = Store.PauseKind.KEY_REJECTED
                store.paused_reason = "the provider rejected the API key when it was saved"
        if commit:
            store.save()
            if self.key_check is not None:
                # What the provider said of the new key replaces what it said of the old one.
                note_provider_state(store, STATE_AFTER_CHECK[self.key_check])
        return store


def rules_preview_form(store: Store, data: Any) -> forms.ModelForm:
    """The store's settings form's rules alone, bound to what was typed into it: validated as
    saving would validate them (each field's limits, the least to call not above the most),
    never saved, and without the rest of the form (a typo elsewhere, a new API key that would
    be checked with the provider). Its instance is `store` with the typed rules set: what the
    preview judges by. The rules the settings form does not show keep their saved values."""
    names = [name for name in StoreForm.base_fields if name in PREVIEWED_SETTINGS]
    labels = {name: StoreForm.Meta.labels[name] for name in names if name in StoreForm.Meta.labels}
    form_class = forms.modelform_factory(Store, fields=names, labels=labels)  # type: ignore[arg-type]
    return form_class(data, instance=store)


class BlockPhoneForm(forms.Form):
    """A phone put on a store's block list by hand: from an order's page (the order's phone,
    so `phone` is not asked) or the store's block list. What a phone or a reason must be is
    calls/block_list.py's to say (the view puts its refusal on the field)."""

    phone = forms.CharField(
        max_length=40, label=_("Phone"), help_text=_("A Pakistani mobile, e.g. 0300 1234567.")
    )
    reason = forms.CharField(
        label=_("Reason"),
        help_text=_("Shown with every order of this phone that the block holds."),
        widget=forms.TextInput(),
    )

    def __init__(self, *args: Any, ask_phone: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not ask_phone:
            del self.fields["phone"]


class UserForm(forms.ModelForm):
    password = forms.CharField(
        label=_("Password"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )

    class Meta:
        model = User
        fields = ["username", "role", "language", "is_active"]
        labels = {
            "username": _("Username"),
            "role": _("Role"),
            "language": _("Language"),
            "is_active": _("Active (may sign in)"),
        }

    def __init__(self, *args: Any, acting_user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.acting_user = acting_user
        self.creating = self.instance.pk is None
        self.fields["is_active"].help_text = ""
        self.fields["username"].help_text = _("Letters, digits and @/./+/-/_ only.")
        language = self.fields["language"]
        assert isinstance(language, forms.ChoiceField)
        language.choices = [("", _("The browser's language")), *settings.LANGUAGES]
        if self.creating:
            self.fields["password"].required = True
        else:
            self.fields["password"].label = _("New password")
            self.fields["password"].help_text = _("Leave blank to keep the current password.")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not self.creating and self.instance.pk == self.acting_user.pk:
            # An admin locking themselves out leaves nobody to undo it.
            if cleaned.get("role") and cleaned["role"] != User.Role.ADMIN:
                self.add_error("role", _("You cannot remove your own admin role."))
            if "is_active" in cleaned and not cleaned["is_active"]:
                self.add_error("is_active", _("You cannot deactivate your own account."))
        password = cleaned.get("password")
        if password:
            candidate = self.instance
            candidate.username = cleaned.get("username") or candidate.username
            try:
                password_validation.validate_password(password, candidate)
            except ValidationError as exc:
                self.add_error("password", exc)
        return cleaned

    def save(self, commit: bool = True) -> User:
        user: User = super().save(commit=False)
        password = self.cleaned_data.get("password")
        if password:
            user.set_password(password)
        elif self.creating:  # pragma: no cover - the field is required when creating
            user.set_unusable_password()
        if commit:
            user.save()
        return user
