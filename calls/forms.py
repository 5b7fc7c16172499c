"""The forms of the campaign, report and settings pages.

Each form says what is wrong field by field, and a bound form re-renders what was typed, so a
bad submit loses nothing. The one exception is the provider API key: it is write-only and never
rendered back (not even after an error), so the forms ask for it again instead.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from calls.imports import parse_amount
from calls.models import Store, User
from calls.phones import InvalidPhone, normalize_pk_mobile

MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # far above any day's orders; keeps a stray file out
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


class StoreChoiceField(forms.ModelChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(queryset=Store.objects.order_by("name"), **kwargs)


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
    )
    voice_id = forms.IntegerField(
        required=False, min_value=1, label=_("Voice id"), help_text=_("Blank: the store's default.")
    )

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
        label=_("CSV file"),
        help_text=_(
            "Columns phone, amount, order_id, store_name (optional: voice_id, text3..text5, "
            "key1..key5)."
        ),
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


def parse_retry_delays(text: str) -> list[int]:
    """'300,600,1800' -> [300, 600, 1800], or a ValidationError naming the bad part."""
    parts = [part.strip() for part in text.split(",")]
    if not text.strip() or any(part == "" for part in parts):
        raise ValidationError(
            _("Give the retry delays in seconds separated by commas, e.g. 300,600,1800.")
        )
    delays = []
    for part in parts:
        if not part.isdigit() or int(part) <= 0:
            raise ValidationError(
                _(
                    "“%(part)s” is not a positive whole number of seconds; write the delays like "
                    "300,600,1800."
                )
                % {"part": part[:20]}
            )
        delays.append(int(part))
    return delays


class StoreForm(forms.ModelForm):
    api_key = forms.CharField(
        label=_("API key"),
        required=False,
        strip=True,
        max_length=200,
        # Write-only: never rendered back, not even after a failed submit.
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )
    retry_delays = forms.CharField(
        label=_("Retry delays (seconds)"),
        help_text=_("One per provider retry, as in the portal's Call Settings, e.g. 300,600,1800."),
    )

    field_order = ["name", "api_key"]  # the rest follow in Meta.fields order

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
            "low_balance_threshold",
            "paused",
        ]
        labels = {
            "name": _("Name"),
            "default_voice_id": _("Default voice id"),
            "timezone": _("Time zone"),
            "calling_start": _("Calling hours start"),
            "calling_end": _("Calling hours end"),
            "provider_retries": _("Provider retries"),
            "reattempts": _("Re-attempts after an unanswered order"),
            "reattempt_gap_minutes": _("Minutes between re-attempts"),
            "low_balance_threshold": _("Low-balance threshold (Rs)"),
            "paused": _("Paused (no calls are sent)"),
        }
        help_texts = {
            "calling_end": _("In the store's time zone. The same time as the start: any hour."),
            "default_voice_id": _(
                "The provider's recorded message to use when a campaign or row names none."
            ),
            "low_balance_threshold": _("Below this balance, launching is blocked."),
            "reattempts": _(
                "0 is off. When an order ends unreachable or with no key pressed after the "
                "provider's free retries, call it again up to this many more times (each a new "
                "call, and a new charge), inside calling hours."
            ),
            "reattempt_gap_minutes": _("At least this long after the last attempt ended."),
        }
        widgets = {
            "calling_start": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "calling_end": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.creating = self.instance.pk is None
        delays = self.instance.retry_delays
        if isinstance(delays, list) and not self.is_bound:
            self.initial["retry_delays"] = ",".join(str(d) for d in delays)
        for optional in ("reattempts", "reattempt_gap_minutes"):
            self.fields[optional].required = False
        if self.creating:
            self.fields["api_key"].required = True
            self.fields["api_key"].help_text = _(
                "From the Robo Call portal. It is stored encrypted."
            )
        else:
            self.fields["api_key"].help_text = _(
                "Write-only: the current key is never shown. Leave blank to keep it."
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

    def clean_retry_delays(self) -> list[int]:
        return parse_retry_delays(str(self.cleaned_data.get("retry_delays", "")))

    @property
    def key_changed(self) -> bool:
        return bool(self.cleaned_data.get("api_key"))

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
        if commit:
            store.save()
        return store


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
