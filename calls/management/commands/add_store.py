"""ROBOCALL_API_KEY=... python manage.py add_store NAME [options] [--update]

The key is read from the environment, never from the command line (where `ps` and the shell
history would keep it). It is checked with the provider's user_verify first: a key the provider
does not match is refused and nothing is stored; when the provider cannot be reached the store
is saved with a warning that its key is not verified yet.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from calls.models import CENT, MAX_REATTEMPTS, Store, validate_timezone
from calls.pipeline.provider import ProviderError, ProviderRejected, RobocallClient
from calls.redaction import redact

API_KEY_ENV = "ROBOCALL_API_KEY"
MAX_PROVIDER_RETRIES = 10
_HOURS = re.compile(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})")


def parse_calling_hours(text: str) -> tuple[dt.time, dt.time]:
    match = _HOURS.fullmatch(text.strip())
    if not match:
        raise CommandError(
            f"--calling-hours must look like 09:00-21:00 (HH:MM-HH:MM), not {text!r}"
        )
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
        raise CommandError(f"--calling-hours {text!r} is not a time of day (00:00 to 23:59)")
    start, end = dt.time(h1, m1), dt.time(h2, m2)
    if start == end:
        raise CommandError(f"--calling-hours {text!r} is an empty window: start and end are equal")
    return start, end


def parse_provider_retries(text: str) -> int:
    if not text.strip().isdigit() or int(text) > MAX_PROVIDER_RETRIES:
        raise CommandError(
            f"--provider-retries must be a whole number from 0 to {MAX_PROVIDER_RETRIES} "
            f"(the portal's free retries, 3 by default), not {text!r}"
        )
    return int(text)


def parse_whole_number(option: str, text: str, low: int, high: int) -> int:
    if not text.strip().isdigit() or not low <= int(text) <= high:
        raise CommandError(f"{option} must be a whole number from {low} to {high}, not {text!r}")
    return int(text)


def parse_retry_delays(text: str) -> list[int]:
    parts = [p.strip() for p in text.split(",")]
    if not parts or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise CommandError(
            f"--retry-delays must be positive whole seconds separated by commas, "
            f"e.g. 300,600,1800, not {text!r}"
        )
    return [int(p) for p in parts]


def parse_low_balance(text: str) -> Decimal:
    try:
        value = Decimal(text.strip().replace(",", ""))
    except InvalidOperation:
        value = Decimal(-1)
    if not value.is_finite() or value < 0 or value != value.quantize(CENT):
        raise CommandError(
            f"--low-balance must be an amount in rupees of 0 or more (e.g. 500), not {text!r}"
        )
    if value >= Decimal("1e10"):
        raise CommandError(f"--low-balance {text!r} is too large")
    return value


def parse_voice_id(text: str) -> int:
    if not text.strip().isdigit() or not 0 < int(text) < 2**31:
        raise CommandError(f"--voice-id must be a positive whole number, not {text!r}")
    return int(text)


def parse_timezone(text: str) -> str:
    try:
        validate_timezone(text.strip())
    except ValidationError as exc:
        raise CommandError(f"--timezone: {' '.join(exc.messages)}") from None
    return text.strip()


class Command(BaseCommand):
    help = f"Add (or with --update change) a store; its API key is read from ${API_KEY_ENV}."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--voice-id", help="default voice id of the store's calls")
        parser.add_argument("--calling-hours", help="local calling window, e.g. 09:00-21:00")
        parser.add_argument("--provider-retries", help="the portal's free retries (0-10)")
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
        parser.add_argument("--timezone", help="the store's time zone, e.g. Asia/Karachi")
        parser.add_argument(
            "--update", action="store_true", help="change an existing store instead"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["name"].strip()
        if not name:
            raise CommandError("the store name must not be empty")
        if len(name) > 100:
            raise CommandError("the store name is longer than 100 characters")
        # Every option is checked before the key is sent anywhere.
        changes: dict[str, Any] = {}
        if options["voice_id"] is not None:
            changes["default_voice_id"] = parse_voice_id(options["voice_id"])
        if options["calling_hours"] is not None:
            changes["calling_start"], changes["calling_end"] = parse_calling_hours(
                options["calling_hours"]
            )
        if options["provider_retries"] is not None:
            changes["provider_retries"] = parse_provider_retries(options["provider_retries"])
        if options["retry_delays"] is not None:
            changes["retry_delays"] = parse_retry_delays(options["retry_delays"])
        if options["reattempts"] is not None:
            changes["reattempts"] = parse_whole_number(
                "--reattempts", options["reattempts"], 0, MAX_REATTEMPTS
            )
        if options["reattempt_gap"] is not None:
            changes["reattempt_gap_minutes"] = parse_whole_number(
                "--reattempt-gap", options["reattempt_gap"], 1, 7 * 24 * 60
            )
        if options["low_balance"] is not None:
            changes["low_balance_threshold"] = parse_low_balance(options["low_balance"])
        if options["timezone"] is not None:
            changes["timezone"] = parse_timezone(options["timezone"])

        api_key = os.environ.get(API_KEY_ENV, "").strip()
        existing = Store.objects.filter(name=name).first()
        if existing is not None and not options["update"]:
            raise CommandError(f"a store named {name!r} exists already: add --update to change it")
        if existing is None and options["update"]:
            raise CommandError(f"no store named {name!r} to update (leave out --update to add it)")
        if existing is None and not api_key:
            raise CommandError(
                f"set the store's API key in the environment variable {API_KEY_ENV} "
                "(it is never taken from the command line)"
            )

        store = existing or Store(name=name)
        for field_name, value in changes.items():
            setattr(store, field_name, value)
        if api_key:
            store.api_key = api_key  # also clears key_verified_at
        try:
            store.full_clean()
        except ValidationError as exc:
            problems = "; ".join(
                f"{field}: {' '.join(messages)}" for field, messages in exc.message_dict.items()
            )
            raise CommandError(f"the store is not valid: {redact(problems)}") from None

        verified = self._verify(api_key) if api_key else None
        if verified:
            store.key_verified_at = timezone.now()
        with transaction.atomic():
            store.save()
        action = "updated" if existing else "added"
        self.stdout.write(self.style.SUCCESS(f"Store {store.name!r} {action}."))
        if verified is False:
            self.stderr.write(
                self.style.WARNING(
                    "Warning: the provider could not be reached, so the API key is not verified "
                    "yet. Verify it later from the store's settings page."
                )
            )

    def _verify(self, api_key: str) -> bool:
        """True when the provider matches the key; False when it cannot be asked now.
        A key the provider refuses stops the command: nothing is stored."""
        try:
            with RobocallClient(api_key) as client:
                matched = client.verify_key()
        except ValueError as exc:  # ROBOCALL_BASE_URL is not a usable URL
            raise CommandError(f"{redact(str(exc))}; nothing was stored") from None
        except ProviderRejected as exc:
            raise CommandError(
                f"the provider refused to verify the API key ({redact(str(exc))}); "
                "nothing was stored"
            ) from None
        except ProviderError as exc:
            self.stderr.write(f"user_verify failed: {redact(str(exc))}")
            return False
        if not matched:
            raise CommandError(
                f"the provider says this API key is not matched: check ${API_KEY_ENV} "
                "(nothing was stored)"
            )
        return True
