"""ROBOCALL_API_KEY=... python manage.py add_store NAME [options] [--update]

The command fills the store form of the settings page (calls.forms.StoreForm), so the page and the
command cannot disagree about a rule: the options are the form's fields in a shell's notation,
and the form checks them, checks a new key with the provider and saves the store.

The key is read from the environment, never from the command line (where `ps` and the shell
history would keep it). It is checked with the provider once every option is valid: a key the
provider does not match is refused and nothing is stored; when the provider cannot be reached the
store is saved with a warning that its key is not verified yet.
"""

from __future__ import annotations

import os
import re
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from calls.forms import RULE_FIELDS, StoreForm
from calls.models import MAX_PROVIDER_RETRIES, MAX_REATTEMPTS, Store
from calls.pipeline.balances import KeyCheck
from calls.redaction import redact

API_KEY_ENV = "ROBOCALL_API_KEY"
_HOURS = re.compile(r"(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})")

# Each option and the form field it fills. An option's value is passed on as typed, except where
# the shell's notation differs from the page's (hours as one range, delays in seconds).
OPTION_FIELDS = {
    "voice_id": "default_voice_id",
    "provider_retries": "provider_retries",
    "retry_delays": "retry_delays",
    "low_balance": "low_balance_threshold",
    "reattempts": "reattempts",
    "reattempt_gap": "reattempt_gap_minutes",
    "after_last_attempt": "after_last_attempt",
    "timezone": "timezone",
    "return_cost": "return_cost",
    "notify_on_shipped": "notify_on_shipped",
    "notify_on_cancelled": "notify_on_cancelled",
    "call_min_amount": "call_min_amount",
    "call_max_amount": "call_max_amount",
    "trust_after": "trust_after",
    "hold_after_returns": "hold_after_returns",
    "stale_after": "stale_after_hours",
    "first_call_delay": "first_call_delay_minutes",
    "max_calls_per_phone_per_day": "max_calls_per_phone_per_day",
}
# Options a store may leave off (a notice's voice, a rule at intake): `off` (or nothing) turns
# it off, as a blank field does on the page.
OFF_OPTIONS = ("notify_on_shipped", "notify_on_cancelled", *RULE_FIELDS)

# The flag that fills each field, to name it in an error.
FIELD_FLAGS = {
    "name": "NAME",
    "api_key": f"${API_KEY_ENV}",
    "default_voice_id": "--voice-id",
    "calling_start": "--calling-hours",
    "calling_end": "--calling-hours",
    "provider_retries": "--provider-retries",
    "retry_delays": "--retry-delays",
    "low_balance_threshold": "--low-balance",
    "reattempts": "--reattempts",
    "reattempt_gap_minutes": "--reattempt-gap",
    "after_last_attempt": "--after-last-attempt",
    "timezone": "--timezone",
    "return_cost": "--return-cost",
    "notify_on_shipped": "--notify-on-shipped",
    "notify_on_cancelled": "--notify-on-cancelled",
    "call_min_amount": "--call-min-amount",
    "call_max_amount": "--call-max-amount",
    "trust_after": "--trust-after",
    "hold_after_returns": "--hold-after-returns",
    "stale_after_hours": "--stale-after",
    "first_call_delay_minutes": "--first-call-delay",
    "max_calls_per_phone_per_day": "--max-calls-per-phone-per-day",
}

# How a value the form finds malformed or out of range is described in the flag's terms. The
# bounds are the model's (the form's) own; the words are the shell's.
VALUE_PROBLEMS = {
    "name": {
        "required": "the store name must not be empty",
        "max_length": "the store name is longer than 100 characters",
    },
    "api_key": {
        "required": f"set the store's API key in the environment variable {API_KEY_ENV} "
        "(it is never taken from the command line)",
    },
    "default_voice_id": "{flag} must be a positive whole number, not {text!r}",
    "calling_start": "{flag} {text!r} is not a time of day (00:00 to 23:59)",
    "calling_end": "{flag} {text!r} is not a time of day (00:00 to 23:59)",
    "provider_retries": f"{{flag}} must be a whole number from 0 to {MAX_PROVIDER_RETRIES} "
    "(the portal's free retries, 3 by default), not {text!r}",
    "low_balance_threshold": "{flag} must be an amount in rupees of 0 or more (e.g. 500), "
    "not {text!r}",
    "reattempts": f"{{flag}} must be a whole number from 0 to {MAX_REATTEMPTS}, not {{text!r}}",
    "reattempt_gap_minutes": "{flag} must be a whole number from 1 to 10080, not {text!r}",
    "after_last_attempt": "{flag} must be queue or cancel, not {text!r}",
    "return_cost": "{flag} must be an amount in rupees of 0 or more (e.g. 350), not {text!r}",
    "notify_on_shipped": "{flag} must be a voice id (a positive whole number) or off, not {text!r}",
    "notify_on_cancelled": "{flag} must be a voice id (a positive whole number) or off, "
    "not {text!r}",
    "call_min_amount": "{flag} must be an amount in rupees of 0 or more (e.g. 1000) or off, "
    "not {text!r}",
    "call_max_amount": "{flag} must be an amount in rupees of 0 or more (e.g. 50000) or off, "
    "not {text!r}",
    "trust_after": "{flag} must be a whole number of delivered orders, 1 or more, or off, "
    "not {text!r}",
    "hold_after_returns": "{flag} must be a whole number of returned orders, 1 or more, or off, "
    "not {text!r}",
    "stale_after_hours": "{flag} must be a whole number of hours, 1 or more, or off, not {text!r}",
    "first_call_delay_minutes": "{flag} must be a whole number of minutes from 1 to 10080, or "
    "off, not {text!r}",
    "max_calls_per_phone_per_day": "{flag} must be a whole number of calls, 1 or more, or off, "
    "not {text!r}",
}
# Codes of Django's field checks: the value on its own is wrong. Any other error is a rule
# across fields (e.g. one delay per retry) and is shown in the form's words.
VALUE_CODES = {
    "required",
    "invalid",
    "invalid_choice",
    "min_value",
    "max_value",
    "max_length",
    "max_digits",
    "max_decimal_places",
    "max_whole_digits",
}


def calling_hours(text: str) -> tuple[str, str]:
    """'09:00-21:00' -> the form's start and end (equal times: round the clock, as on the page)."""
    match = _HOURS.fullmatch(text.strip())
    if not match:
        raise CommandError(
            f"--calling-hours must look like 09:00-21:00 (HH:MM-HH:MM), not {text!r}"
        )
    return match.group(1), match.group(2)


def retry_delays_in_seconds(text: str) -> str:
    """'300,600,1800' (seconds) -> the form's notation for seconds, '300s, 600s, 1800s'."""
    parts = [p.strip() for p in text.split(",")]
    if not all(p.isdigit() and int(p) > 0 for p in parts):
        raise CommandError(
            f"--retry-delays must be positive whole seconds separated by commas, "
            f"e.g. 300,600,1800, not {text!r}"
        )
    return ", ".join(f"{p}s" for p in parts)


class Command(BaseCommand):
    help = f"Add (or with --update change) a store; its API key is read from ${API_KEY_ENV}."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--voice-id", help="default voice id of the store's calls")
        parser.add_argument(
            "--calling-hours",
            help="local calling window, e.g. 09:00-21:00 (equal times: round the clock)",
        )
        parser.add_argument(
            "--provider-retries", help=f"the portal's free retries (0-{MAX_PROVIDER_RETRIES})"
        )
        parser.add_argument("--retry-delays", help="seconds between retries, e.g. 300,600,1800")
        parser.add_argument("--low-balance", help="launches are blocked below this balance")
        parser.add_argument(
            "--reattempts",
            help=f"call an unreachable or no-input order again up to N more times "
            f"(0-{MAX_REATTEMPTS}; 0, the default, is off)",
        )
        parser.add_argument(
            "--reattempt-gap", help="minutes between re-attempts, at least (default 45)"
        )
        parser.add_argument(
            "--after-last-attempt",
            help="an order still unanswered after every attempt: queue (the follow-up queue, "
            "the default) or cancel (cancelled, and the shop told)",
        )
        parser.add_argument("--timezone", help="the store's time zone, e.g. Asia/Karachi")
        parser.add_argument(
            "--return-cost",
            metavar="RS",
            help="what one returned parcel costs the store, in rupees (default 0): the reports' "
            "returns avoided are priced with it",
        )
        parser.add_argument(
            "--notify-on-shipped",
            metavar="VOICE_ID",
            help="call the customer once with this voice when their order ships (a notice call: "
            "it asks nothing); off for no such call",
        )
        parser.add_argument(
            "--notify-on-cancelled",
            metavar="VOICE_ID",
            help="call the customer once with this voice when the shop cancels their order; "
            "off for no such call",
        )
        parser.add_argument(
            "--call-min-amount",
            metavar="RS",
            help="skip (do not call) a new order below this amount; off (the default) for none",
        )
        parser.add_argument(
            "--call-max-amount",
            metavar="RS",
            help="skip a new order above this amount; off (the default) for none",
        )
        parser.add_argument(
            "--trust-after",
            metavar="N",
            help="skip a new order from a phone with N delivered orders at this store and none "
            "returned; off (the default) for none",
        )
        parser.add_argument(
            "--hold-after-returns",
            metavar="N",
            help="hold a new order from a phone with N returned orders at this store for a "
            "person (the follow-up queue); off (the default) for none",
        )
        parser.add_argument(
            "--stale-after",
            metavar="HOURS",
            help="hold a new order the shop placed more than HOURS before robodash received it "
            "(an order with no placed time never is); off (the default) for none",
        )
        parser.add_argument(
            "--first-call-delay",
            metavar="MINUTES",
            help="queue a new order's first call MINUTES after it arrived, at the soonest (a "
            "cancel meanwhile withdraws it); off (the default) to call at once",
        )
        parser.add_argument(
            "--max-calls-per-phone-per-day",
            metavar="N",
            help="place at most N calls a day (the store's zone) to one phone, every kind "
            "counted; one past it waits for the next day's calling hours; off (the default)",
        )
        parser.add_argument(
            "--update", action="store_true", help="change an existing store instead"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["name"].strip()
        existing = Store.objects.filter(name=name).first() if name else None
        if existing is not None and not options["update"]:
            raise CommandError(f"a store named {name!r} exists already: add --update to change it")
        if existing is None and options["update"]:
            raise CommandError(f"no store named {name!r} to update (leave out --update to add it)")

        typed = self._typed_values(options)
        form = StoreForm(self._form_data(existing, name, typed), instance=existing)
        try:
            valid = form.is_valid()  # asks the provider about a new key, once all else is valid
        except ValueError as exc:  # ROBOCALL_BASE_URL is not a usable URL
            raise CommandError(f"{redact(str(exc))}; nothing was stored") from None
        if not valid:
            raise CommandError(self._problems(form, typed))
        store = form.save()

        self.stdout.write(
            self.style.SUCCESS(f"Store {store.name!r} {'updated' if existing else 'added'}.")
        )
        if form.key_check is KeyCheck.UNREACHABLE:
            self.stderr.write(
                self.style.WARNING(
                    "Warning: the provider could not be reached, so the API key is not verified "
                    "yet. Verify it later from the store's settings page."
                )
            )

    @staticmethod
    def _typed_values(options: dict[str, Any]) -> dict[str, str]:
        """The form fields the options fill, with the text as typed (for the error messages)."""
        typed = {
            field: str(options[option]).strip()
            for option, field in OPTION_FIELDS.items()
            if options[option] is not None
        }
        if options["calling_hours"] is not None:
            typed["calling_start"], typed["calling_end"] = calling_hours(options["calling_hours"])
        return typed

    @staticmethod
    def _form_data(existing: Store | None, name: str, typed: dict[str, str]) -> dict[str, Any]:
        """What the page would submit: the store's current values (a new store's defaults),
        with the options' values over them."""
        shown = StoreForm(instance=existing or Store())  # a new Store() holds the defaults
        data: dict[str, Any] = {field: shown[field].value() for field in shown.fields}
        data |= typed
        if "retry_delays" in typed:
            data["retry_delays"] = retry_delays_in_seconds(typed["retry_delays"])
        for money in ("low_balance_threshold", "return_cost", "call_min_amount", "call_max_amount"):
            if money in typed:
                data[money] = typed[money].replace(",", "")
        for option in OFF_OPTIONS:
            if typed.get(option, "").lower() == "off":
                data[option] = ""
        data["name"] = name
        data["api_key"] = os.environ.get(API_KEY_ENV, "").strip()
        data["save_rejected_key_paused"] = False  # the page's choice; a script is refused
        return data

    @staticmethod
    def _problems(form: StoreForm, typed: dict[str, str]) -> str:
        """The form's errors, each naming its flag or variable; never the key itself."""
        if form.key_check is KeyCheck.REJECTED:
            return (
                f"the provider says this API key is not matched: check ${API_KEY_ENV} "
                "(nothing was stored)"
            )
        problems: list[str] = []
        for field, errors in form.errors.as_data().items():
            for error in errors:
                problems.append(_in_flag_terms(field, error, typed.get(field, "")))
        return redact("; ".join(dict.fromkeys(problems)))  # hours' two fields say it once


def _in_flag_terms(field: str, error: ValidationError, text: str) -> str:
    flag = FIELD_FLAGS.get(field, field)
    words = VALUE_PROBLEMS.get(field)
    if error.code in VALUE_CODES:
        if isinstance(words, dict) and error.code in words:
            return words[error.code]
        if isinstance(words, str):
            return words.format(flag=flag, text=text)
    return f"{flag}: {' '.join(error.messages)}"
