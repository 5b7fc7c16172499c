"""The domain: stores, campaigns, calls and their event log, users with one role each.

An order is what a shop sent; calls are attempts to verify it. A call's life: queued -> sending ->
in_progress -> final, with the outcome set when final. `state` is where the pipeline is;
`outcome` is what happened (blank until final). calls/transitions.py holds every transition of
both, and docs/architecture.md the overview.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex, HashIndex, OpClass
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q, Value
from django.db.models.functions import Length, Upper
from django.db.models.lookups import LessThanOrEqual
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from calls import crypto
from calls.redaction import remember_store_key, remember_store_keys

# The paisa: every amount here is stored with two decimals, so money is checked and rounded to it.
CENT = Decimal("0.01")


class User(AbstractUser):
    class Role(models.TextChoices):
        ADMIN = "admin", _("Merchant admin")
        AGENT = "agent", _("Support agent")
        MANAGER = "manager", _("Manager")

    role = models.CharField(max_length=16, choices=Role.choices, default=Role.AGENT)
    # Blank: the browser's language (Accept-Language, or the switcher's cookie), else English.
    language = models.CharField(max_length=8, blank=True, choices=settings.LANGUAGES)

    @property
    def is_admin(self) -> bool:
        return self.role == self.Role.ADMIN


MAX_REATTEMPTS = 10  # a store's re-attempt policy calls an order at most this many more times
MAX_PROVIDER_RETRIES = 10  # the most free retries the provider's portal offers


def default_retry_delays() -> list[int]:
    # The portal's Call Settings default: 5, 10 and 30 minutes between the free retries.
    return [300, 600, 1800]


def default_store_timezone() -> str:
    # Read when a store is made, not frozen into a migration: the setting is the deployment's.
    return str(settings.ROBODASH_DEFAULT_STORE_TIMEZONE)


def validate_timezone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            _("%(zone)s is not a known time zone (e.g. Asia/Karachi)") % {"zone": repr(value)}
        ) from None


class Store(models.Model):
    name = models.CharField(max_length=100, unique=True)
    api_key_encrypted = models.TextField(editable=False)
    default_voice_id = models.PositiveIntegerField(default=102, validators=[MinValueValidator(1)])
    timezone = models.CharField(
        max_length=64,
        default=default_store_timezone,
        validators=[validate_timezone],
    )
    calling_start = models.TimeField(default=dt.time(9, 0))
    calling_end = models.TimeField(default=dt.time(21, 0))
    provider_retries = models.PositiveSmallIntegerField(
        default=3, validators=[MaxValueValidator(MAX_PROVIDER_RETRIES)]
    )
    retry_delays = models.JSONField(default=default_retry_delays)  # seconds, one per free retry
    # Re-attempt policy (off at 0): an order that ends unreachable or with no input after the
    # provider's free retries is called again, up to `reattempts` more times, at least
    # `reattempt_gap_minutes` apart, inside calling hours (calls/transitions.py).
    reattempts = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(MAX_REATTEMPTS)]
    )
    reattempt_gap_minutes = models.PositiveIntegerField(
        default=45, validators=[MinValueValidator(1), MaxValueValidator(7 * 24 * 60)]
    )
    low_balance_threshold = models.DecimalField(
        max_digits=12, decimal_places=2, default=Decimal(500), validators=[MinValueValidator(0)]
    )

    class AfterLastAttempt(models.TextChoices):
        """What becomes of an order still unreachable or without a key press once every attempt
        (the provider's retries, then the store's re-attempts) is used up."""

        QUEUE = "queue", _("Put it in the follow-up queue")
        CANCEL = "cancel", _("Cancel it (no answer after every attempt)")

    after_last_attempt = models.CharField(
        max_length=8,
        choices=AfterLastAttempt.choices,
        default=AfterLastAttempt.QUEUE,
        db_default=AfterLastAttempt.QUEUE,
    )

    # What one parcel refused at the door costs the merchant (shipping both ways, the stock's
    # time): the reports' "returns avoided" is the orders cancelled before shipping times this.
    return_cost = models.DecimalField(
        max_digits=10,
        decimal_places=2,
        default=Decimal("0.00"),
        db_default=Decimal("0.00"),
        validators=[MinValueValidator(Decimal("0.00"))],
    )
    # A voice id for a notice call when one of the store's orders ships, and when the shop
    # cancels one (None: no such call). Notice calls never verify: calls/notices.py.
    notify_on_shipped = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)]
    )
    notify_on_cancelled = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)]
    )

    # The rules judged at intake (calls/rules.py), each off while None. An amount outside
    # [call_min_amount, call_max_amount] is skipped; a phone with `trust_after` delivered orders
    # and none returned is skipped; a phone with `hold_after_returns` returned orders is held.
    call_min_amount = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.00"))],
    )
    call_max_amount = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.00"))],
    )
    trust_after = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)]
    )
    hold_after_returns = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)]
    )
    # An order placed (the shop's time) more than this before it arrived is held.
    stale_after_hours = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)]
    )
    # The first call of an order is queued for no sooner than this after it arrived.
    first_call_delay_minutes = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(7 * 24 * 60)]
    )
    # Every call robodash places to one phone in a day (the store's zone), checked at claim.
    max_calls_per_phone_per_day = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)]
    )

    class PauseKind(models.TextChoices):
        """Why robodash paused a store (blank: not paused, or paused by a person). Pages word
        it in the reader's language (calls/templatetags/present.py, pause_reason)."""

        KEY_REJECTED = "key_rejected", _("The provider rejected the API key")
        PROVIDER_UNUSABLE = "provider_unusable", _("robodash could not use the provider")

    paused = models.BooleanField(default=False)
    # A database default too: raw inserts (the bench, a test at an older migration) name no value.
    pause_kind = models.CharField(
        max_length=32, choices=PauseKind.choices, blank=True, db_default=""
    )
    # The detail behind pause_kind for support (redacted, in the log line's words); never shown
    # to merchants and never read back to decide anything.
    paused_reason = models.CharField(max_length=500, blank=True)
    key_verified_at = models.DateTimeField(null=True, blank=True)

    # Last known check_balance answer, shown with its age when the provider is down.
    balance = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    balance_username = models.CharField(max_length=100, blank=True)
    call_rate = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    balance_checked_at = models.DateTimeField(null=True, blank=True)

    class ProviderState(models.TextChoices):
        """What the provider last said of the store's key (a refresh by beat, a save, Verify)."""

        OK = "ok"
        UNREACHABLE = "unreachable"  # not answering, or an answer that could not be used
        REJECTED = "rejected"  # it answered, and refused the key ("API Key not matched")

    # On the row, not in a cache: the worker's refresh writes it, every web process reads it.
    # A database default too: raw inserts (the bench, a test at an older migration) name no value.
    provider_state = models.CharField(
        max_length=12, choices=ProviderState.choices, blank=True, db_default=""
    )
    provider_state_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            # A range that excludes every amount would skip every order, silently.
            models.CheckConstraint(
                condition=Q(call_min_amount__lte=F("call_max_amount")),
                name="store_call_amount_range",
                violation_error_message="The minimum amount to call is above the maximum.",
            ),
            # A negative return cost would count cancelled orders as money lost.
            models.CheckConstraint(
                condition=models.Q(return_cost__gte=0), name="store_return_cost_not_negative"
            ),
            # A negative threshold would let a launch run the balance into debt unwarned.
            models.CheckConstraint(
                condition=models.Q(low_balance_threshold__gte=0),
                name="store_threshold_not_negative",
                violation_error_message="The low-balance threshold cannot be negative.",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self.paused:
            # Resumed: why it was paused is history (kept in the logs).
            self.pause_kind = ""
            self.paused_reason = ""
        super().save(*args, **kwargs)
        Store.remember_current_keys()  # the key saved replaces the store's old one

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        deleted = super().delete(*args, **kwargs)
        Store.remember_current_keys()
        return deleted

    @staticmethod
    def remember_current_keys() -> None:
        """Scrub exactly the stores' current keys from logs (see calls.redaction)."""
        rows = Store.objects.exclude(api_key_encrypted="").values_list("pk", "api_key_encrypted")
        remember_store_keys({pk: crypto.decrypt(token) for pk, token in rows})

    @property
    def api_key(self) -> str:
        key = crypto.decrypt(self.api_key_encrypted) if self.api_key_encrypted else ""
        if self.pk is not None:
            remember_store_key(self.pk, key)
        return key

    @api_key.setter
    def api_key(self, value: str) -> None:
        self.api_key_encrypted = crypto.encrypt(value)
        self.key_verified_at = None

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def clean(self) -> None:
        low, high = self.call_min_amount, self.call_max_amount
        if low is not None and high is not None and low > high:
            # On the field, for the form and add_store; the constraint store_call_amount_range
            # keeps any other writer to it.
            raise ValidationError(
                {"call_max_amount": _("The most to call is below the least to call.")}
            )
        delays = self.retry_delays
        if not isinstance(delays, list) or not all(isinstance(d, int) and d > 0 for d in delays):
            raise ValidationError({"retry_delays": "Retry delays must be positive whole seconds."})
        if len(delays) < self.provider_retries:
            raise ValidationError(
                {"retry_delays": f"Give one delay for each of the {self.provider_retries} retries."}
            )

    def retry_delay(self, retries_done: int) -> int:
        """Seconds the provider waits after attempt number `retries_done` (0 = the first)."""
        delays = self.retry_delays or default_retry_delays()
        return int(delays[min(retries_done, len(delays) - 1)])

    @property
    def calls_around_the_clock(self) -> bool:
        return self.calling_start == self.calling_end

    def in_calling_hours(self, at: dt.datetime) -> bool:
        """Whether a call may start at `at`. A window that starts where it ends is all day."""
        if self.calls_around_the_clock:
            return True
        local = at.astimezone(self.zone).time()
        if self.calling_start < self.calling_end:
            return self.calling_start <= local < self.calling_end
        return local >= self.calling_start or local < self.calling_end  # window over midnight

    def next_calling_time(self, at: dt.datetime) -> dt.datetime:
        """`at` itself inside calling hours, else the start of the next window (aware, UTC)."""
        if self.in_calling_hours(at):
            return at
        local = at.astimezone(self.zone)
        start = dt.datetime.combine(local.date(), self.calling_start, tzinfo=self.zone)
        if start <= local:
            start = dt.datetime.combine(
                local.date() + dt.timedelta(days=1), self.calling_start, tzinfo=self.zone
            )
        return start.astimezone(dt.UTC)

    def first_call_time(self, arrived_at: dt.datetime, now: dt.datetime) -> dt.datetime:
        """When a new order's first call may go: `first_call_delay_minutes` after the order
        arrived (now at the earliest: a webhook taken in late has waited already), then the
        next calling time from there."""
        due = now
        if self.first_call_delay_minutes is not None:
            due = max(now, arrived_at + dt.timedelta(minutes=self.first_call_delay_minutes))
        return self.next_calling_time(due)

    def next_day_calling_time(self, at: dt.datetime) -> dt.datetime:
        """The first calling time of the day after `at`'s, in the store's zone (a phone past
        its daily cap waits for it)."""
        local = at.astimezone(self.zone)
        midnight = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(0), self.zone)
        return self.next_calling_time(midnight.astimezone(dt.UTC))


class Campaign(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")  # imported, not launched (e.g. blocked by a low balance)
        RUNNING = "running", _("Running")
        PAUSED = "paused", _("Paused")

    # The campaign a shop's or the API's orders join unless told otherwise, by the orders'
    # source (shops/intake.py): it takes the store's orders for as long as they come, so its
    # page says "ongoing" where another campaign says when it finished.
    INTAKE_NAMES = {
        "shopify": "Shopify orders",
        "woocommerce": "WooCommerce orders",
        "api": "API orders",
    }

    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="campaigns")
    name = models.CharField(max_length=200)
    voice_id = models.PositiveIntegerField(null=True, blank=True)  # None: the store's default
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # import_calls --campaign NAME --store NAME finds or creates by this pair.
            models.UniqueConstraint(
                fields=["store", "name"], name="campaign_unique_name_per_store"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def takes_intake(self) -> bool:
        """A standing campaign of a shop's or the API's orders: it never finishes."""
        return self.name in self.INTAKE_NAMES.values()


# The texts and keys of the recorded message, in the provider's parameter names.
MESSAGE_TEXT_FIELDS = (
    "text1",
    "text2",
    "text3",
    "text4",
    "text5",
    "key1",
    "key2",
    "key3",
    "key4",
    "key5",
)


class Message(models.Model):
    """What a call says to the customer: kept on the order as the shop sent it, and copied onto
    each call as it was placed."""

    order_id = models.CharField(max_length=100)  # the shop's order id
    phone = models.CharField(max_length=12)  # normalised 923XXXXXXXXX
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    voice_id = models.PositiveIntegerField()
    text1 = models.CharField(max_length=200, blank=True)  # store name, read out by the voice
    text2 = models.CharField(max_length=200, blank=True)  # order id, read out by the voice
    text3 = models.CharField(max_length=200, blank=True)
    text4 = models.CharField(max_length=200, blank=True)
    text5 = models.CharField(max_length=200, blank=True)
    key1 = models.CharField(max_length=50, blank=True)
    key2 = models.CharField(max_length=50, blank=True)
    key3 = models.CharField(max_length=50, blank=True)
    key4 = models.CharField(max_length=50, blank=True)
    key5 = models.CharField(max_length=50, blank=True)

    class Meta:
        abstract = True

    def message_values(self) -> dict[str, Any]:
        """The fields a new call for the same order copies."""
        names = ("order_id", "phone", "amount", "voice_id", *MESSAGE_TEXT_FIELDS)
        return {name: getattr(self, name) for name in names}


class Order(Message):
    """What a shop sent: one order, unique per store and the shop's order id. Calls are attempts
    to verify it; it ends with a decision (the customer's key press, or an agent's by hand) or
    without one. Its status follows its calls (calls/transitions.py is the only writer)."""

    class Source(models.TextChoices):
        CSV = "csv", _("CSV upload")
        FORM = "form", _("Single-order form")
        SHOPIFY = "shopify", _("Shopify")
        WOOCOMMERCE = "woocommerce", _("WooCommerce")
        API = "api", _("HTTP API")

    class Status(models.TextChoices):
        WAITING = "waiting", _("Waiting")
        CALLING = "calling", _("Calling")
        CONFIRMED = "confirmed", _("Confirmed")
        CANCELLED = "cancelled", _("Cancelled")
        CALLBACK_REQUESTED = "callback_requested", _("Callback requested")
        NO_INPUT = "no_input", _("No input")
        UNREACHABLE = "unreachable", _("Unreachable")
        NEEDS_REVIEW = "needs_review", _("Needs review")
        WITHDRAWN = "withdrawn", _("Withdrawn")
        REJECTED = "rejected", _("Rejected")  # by the provider, or at intake (rejected_reason)
        SKIPPED = "skipped", _("Skipped")  # a store's rule said not to call it (verdict skip)
        HELD = "held", _("Held")  # a store's rule held it for a person (verdict hold)

    # Ended without an answer: unreachable after the provider's retries, or answered without a
    # key. The store's re-attempt policy calls these again; the shop is told "no answer".
    SETTLED_WITHOUT_ANSWER = (Status.UNREACHABLE, Status.NO_INPUT)

    class Decision(models.TextChoices):
        NONE = "", _("None")
        CONFIRMED = "confirmed", _("Confirmed")
        CANCELLED = "cancelled", _("Cancelled")

    class DecidedVia(models.TextChoices):
        NONE = "", _("Undecided")
        KEY = "key", _("The customer's key press")
        AGENT = "agent", _("By hand")
        POLICY = "policy", _("The store's rule after the last attempt")

    class FollowUp(models.TextChoices):
        """Why the order is in the agents' queue ("": nobody needs to act on it)."""

        NONE = "", _("Nobody needs to act")
        CALLBACK_REQUESTED = "callback_requested", _("Callback requested")
        UNREACHABLE = "unreachable", _("Unreachable after every attempt")
        NO_INPUT = "no_input", _("Answered, no key pressed")
        NEEDS_REVIEW = "needs_review", _("Needs review")
        REJECTED = "rejected", _("Could not be called")
        HELD = "held", _("Held by a rule")

    class Verdict(models.TextChoices):
        """What the store's rules said at intake (calls/rules.py); "": judged by none (an
        order from before rules). Kept when the order is later called by hand."""

        NONE = "", _("Not judged")
        CALL = "call", _("Call")
        SKIP = "skip", _("Skip")
        HOLD = "hold", _("Hold")

    class Delivery(models.TextChoices):
        """What became of the parcel, as far as robodash has learnt: none -> shipped ->
        delivered | returned (calls/transitions.py delivery_update_wins: which update wins)."""

        NONE = "", _("Not shipped")
        SHIPPED = "shipped", _("Shipped")
        DELIVERED = "delivered", _("Delivered")
        RETURNED = "returned", _("Returned")

    class DeliveryVia(models.TextChoices):
        """Where robodash learnt the parcel's state."""

        NONE = "", _("Nowhere yet")
        SHOPIFY = "shopify", _("Shopify")
        WOOCOMMERCE = "woocommerce", _("WooCommerce")
        API = "api", _("HTTP API")
        SHEET = "sheet", _("Courier sheet")
        HAND = "hand", _("By hand")

    # db_index=False: order_unique_per_store and order_campaign_created_idx lead with them.
    store = models.ForeignKey(
        Store, on_delete=models.PROTECT, related_name="orders", db_index=False
    )
    # The campaign it came in with: a batch label; its calls carry their own campaign.
    campaign = models.ForeignKey(
        Campaign, on_delete=models.PROTECT, related_name="orders", db_index=False
    )
    customer_name = models.CharField(max_length=200, blank=True)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.CSV)
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.WAITING)
    decision = models.CharField(max_length=16, choices=Decision.choices, blank=True)
    # Null with a decision: the customer decided by key press.
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="decided_orders",
    )
    decided_via = models.CharField(max_length=8, choices=DecidedVia.choices, blank=True)
    decision_note = models.TextField(blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    # The follow-up: the order is in the agents' queue while `followup` names why. It is due
    # from `followup_at` (when it entered, or the callback time an agent set: until then it
    # waits out of the queue); a due callback an agent set comes first. One agent may hold it.
    followup = models.CharField(max_length=24, choices=FollowUp.choices, blank=True)
    followup_at = models.DateTimeField(null=True, blank=True)
    callback_set = models.BooleanField(default=False)
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="claimed_orders",
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    # Why an order a shop sent cannot be called (status rejected at intake), said plainly.
    rejected_reason = models.CharField(max_length=500, blank=True)
    # The shop's own id of the order (Shopify's or WooCommerce's number behind the name the
    # customer sees): what writing the decision back to the shop addresses. Kept whole, however
    # long (the webhook's body limit bounds it): a cut id would write back to another order.
    shop_ref = models.TextField(blank=True)

    # The parcel (only calls/transitions.py record_delivery writes these): its state, when it
    # got there (the source's own time, else when robodash heard of it), where robodash learnt
    # it and when, and the courier's tracking number if one was given.
    delivery = models.CharField(
        max_length=16, choices=Delivery.choices, blank=True, default="", db_default=""
    )
    delivery_at = models.DateTimeField(null=True, blank=True)
    delivery_via = models.CharField(
        max_length=16, choices=DeliveryVia.choices, blank=True, default="", db_default=""
    )
    delivery_learnt_at = models.DateTimeField(null=True, blank=True)
    tracking = models.CharField(max_length=100, blank=True, default="", db_default="")
    # A verification call of the order reached the provider (the customer's phone rang, or
    # could have): the returns figures split orders called from orders never called by this.
    called = models.BooleanField(default=False, db_default=False)

    # The rules' verdict at intake and every rule that matched, as codes and values
    # ({"rule": "below_min", "min": "1000.00"}): calls/formatting.py words them for people.
    verdict = models.CharField(
        max_length=8, choices=Verdict.choices, blank=True, default="", db_default=""
    )
    verdict_reasons = models.JSONField(
        default=list, blank=True, db_default=Value([], output_field=models.JSONField())
    )
    # When the shop says the order was placed (its own created time; None: not said), and when
    # robodash received it (a webhook's receipt, even when it is processed later).
    placed_at = models.DateTimeField(null=True, blank=True)
    arrived_at = models.DateTimeField(null=True, blank=True)
    # A possible duplicate: the same phone's latest undecided order at this store, when one came
    # in the 24 hours before this one (calls/intake/judging.py). Only linked: the order is still
    # judged and called as any other. db_index=False: order_duplicate_of_idx, partial.
    duplicate_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="possible_duplicates",
        db_index=False,
    )

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # Intake (imports, the form) looks up whether a store already has an order id.
            models.UniqueConstraint(fields=["store", "order_id"], name="order_unique_per_store"),
            models.CheckConstraint(
                condition=Q(decision="", decided_at__isnull=True)
                | (~Q(decision="") & Q(decided_at__isnull=False)),
                name="order_decided_at_iff_decision",
            ),
            models.CheckConstraint(
                condition=Q(decision="", decided_via="") | (~Q(decision="") & ~Q(decided_via="")),
                name="order_decided_via_iff_decision",
            ),
            models.CheckConstraint(
                condition=Q(followup="") | Q(followup_at__isnull=False),
                name="order_followup_has_time",
            ),
            models.CheckConstraint(
                condition=Q(delivery="", delivery_at__isnull=True)
                | (~Q(delivery="") & Q(delivery_at__isnull=False)),
                name="order_delivery_at_iff_delivery",
            ),
        ]
        indexes = [
            # export_orders --campaign: a campaign's orders, oldest first.
            models.Index(fields=["campaign", "created_at"], name="order_campaign_created_idx"),
            # /calls/ search by order id finds the order: prefix match, as call_order_id_idx.
            models.Index(
                fields=["order_id"], name="order_order_id_idx", opclasses=["varchar_pattern_ops"]
            ),
            # /orders/ (calls/views/order_list.py): newest first, keyset (created_at, id), of every
            # store or of one; a status, even a rare one, read off its own index rather than
            # found by walking every order (tests/calls/test_orders_list_plan.py).
            models.Index(fields=["created_at", "id"], name="order_created_idx"),
            models.Index(fields=["store", "created_at", "id"], name="order_store_created_idx"),
            models.Index(fields=["status", "created_at", "id"], name="order_status_created_idx"),
            # /orders/ search by any part of the order id, whatever its case: trigrams of the
            # upper-cased id serve UPPER(order_id) LIKE '%X%' (what icontains writes).
            GinIndex(OpClass(Upper("order_id"), name="gin_trgm_ops"), name="order_id_trgm_idx"),
            # /orders/ search by the start of a phone (LIKE '92300%'), as call_phone_idx.
            models.Index(
                fields=["phone"], name="order_phone_idx", opclasses=["varchar_pattern_ops"]
            ),
            # /followups/ and "Next order": the open follow-ups, due callbacks first, then the
            # oldest (calls/followups.py queue_order); the overview's "needs a decision" count.
            models.Index(
                F("callback_set").desc(),
                "followup_at",
                "id",
                condition=~Q(followup=""),
                name="order_followup_queue_idx",
            ),
            # A fulfillment webhook finds its order by the shop's own id. A hash index: the id
            # is kept whole, and a B-tree refuses a key over 2.7 kB; equality is all it serves.
            HashIndex(fields=["shop_ref"], condition=~Q(shop_ref=""), name="order_shop_ref_idx"),
            # /orders/ filtered by a verdict that kept an order from its call, newest first.
            models.Index(
                fields=["verdict", "created_at", "id"],
                condition=Q(verdict__in=["skip", "hold"]),
                name="order_verdict_created_idx",
            ),
            # The order page's "possible duplicates" of an order (the few orders linked to it),
            # and SET_NULL when it is deleted; most orders link to none, so only those that do.
            models.Index(
                fields=["duplicate_of"],
                condition=Q(duplicate_of__isnull=False),
                name="order_duplicate_of_idx",
            ),
            # /orders/ filtered by the parcel's state, newest first (keyset), like the status.
            models.Index(
                fields=["delivery", "created_at", "id"],
                condition=~Q(delivery=""),
                name="order_delivery_created_idx",
            ),
            # The rules' preview (calls/rule_preview.py): a store's orders of the last 30 days
            # with all the rules read of them, from the index alone (a million-order store's
            # window read from the table costs seconds).
            models.Index(
                fields=["store", "created_at"],
                include=["phone", "amount", "delivery", "placed_at", "arrived_at"],
                condition=Q(rejected_reason=""),
                name="order_rule_window_idx",
            ),
            # ... and each phone's parcels' ends, in the order the preview gathers them
            # (delivered and returned apart, by when robodash learnt them).
            models.Index(
                fields=["store", "phone", "delivery", "delivery_learnt_at"],
                condition=Q(delivery__in=["delivered", "returned"]),
                name="order_phone_end_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.order_id

    @property
    def decider(self) -> str | None:
        """Who decided, as the orders API and the shops' webhooks say it: "customer" (key
        press), the agent's username (by hand), "policy" (the store's rule), or None while
        undecided."""
        if self.decided_via == self.DecidedVia.KEY:
            return "customer"
        if self.decided_via == self.DecidedVia.POLICY:
            return "policy"
        if self.decided_via == self.DecidedVia.AGENT:
            return self.decided_by.username if self.decided_by else "agent"
        return None


class CallQuerySet(models.QuerySet["Call"]):
    def verifying(self) -> CallQuerySet:
        """The verification calls alone: every rule that follows "the order's latest call"
        (its status, decision, follow-up, re-attempts, what may not run beside a call in
        flight) reads these. A notice call is in none of them (calls/notices.py)."""
        return self.filter(purpose=Call.Purpose.VERIFY)


class Call(Message):
    class State(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENDING = "sending", _("Sending")
        IN_PROGRESS = "in_progress", _("In progress")
        FINAL = "final", _("Final")

    class Outcome(models.TextChoices):
        CONFIRMED = "confirmed", _("Confirmed (pressed 1)")
        CANCELLED = "cancelled", _("Cancelled (pressed 2)")
        CALLBACK_REQUESTED = "callback_requested", _("Callback requested (pressed 3)")
        NO_INPUT = "no_input", _("Answered, no input")
        UNREACHABLE = "unreachable", _("Unreachable")
        FAILED = "failed", _("Failed")
        NEEDS_REVIEW = "needs_review", _("Needs review")
        WITHDRAWN = "withdrawn", _("Withdrawn")

    class Purpose(models.TextChoices):
        """Why the call is placed. Only a verification call asks the customer anything: a
        notice call tells them of an event (their order shipped, the shop cancelled it) and
        never moves the order (calls/notices.py)."""

        VERIFY = "verify", _("Verification")
        NOTICE = "notice", _("Notice")

    class NoticeOf(models.TextChoices):
        """The order event a notice call tells of ("" for a verification call)."""

        NONE = "", _("None")
        SHIPPED = "shipped", _("Order shipped")
        CANCELLED = "cancelled", _("Order cancelled by the shop")

    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="calls")
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="calls")
    purpose = models.CharField(
        max_length=8, choices=Purpose.choices, default=Purpose.VERIFY, db_default=Purpose.VERIFY
    )
    notice_of = models.CharField(
        max_length=16, choices=NoticeOf.choices, blank=True, default="", db_default=""
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="callbacks"
    )

    # The order this call verifies (named so that `order_id`, the shop's id, keeps its name).
    # db_index=False: call_order_created_idx leads with it.
    shop_order = models.ForeignKey(
        "Order", on_delete=models.PROTECT, related_name="calls", db_index=False
    )

    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    outcome = models.CharField(max_length=24, choices=Outcome.choices, blank=True)

    # Provider's raw fields, kept beside our outcome.
    provider_call_id = models.CharField(max_length=64, null=True, blank=True)
    call_status = models.SmallIntegerField(null=True, blank=True)
    dtmf = models.SmallIntegerField(null=True, blank=True)
    retry = models.SmallIntegerField(null=True, blank=True)
    call_charges = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    provider_updated_at = models.DateTimeField(null=True, blank=True)

    # Schedules live here, not in broker countdowns.
    scheduled_for = models.DateTimeField(default=timezone.now)  # earliest send (calling hours)
    enqueued_at = models.DateTimeField(null=True, blank=True)  # last send task handed to the broker
    send_attempts = models.PositiveSmallIntegerField(default=0)  # connect failures included
    claimed_at = models.DateTimeField(null=True, blank=True)  # queued -> sending (the lease)
    sent_at = models.DateTimeField(null=True, blank=True)  # the provider accepted it
    next_poll_at = models.DateTimeField(null=True, blank=True)
    poll_count = models.PositiveIntegerField(default=0)  # get_call requests made: a cost
    poll_errors = models.PositiveSmallIntegerField(default=0)  # failed polls in a row
    last_polled_at = models.DateTimeField(null=True, blank=True)
    # When the provider's current (call_status, retry) began, as best we know: it paces the
    # next poll and says when an attempt stuck at 8 or 1 is over (calls/pipeline/outcomes.py).
    status_changed_at = models.DateTimeField(null=True, blank=True)
    finalized_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)  # redacted, human-readable
    review_reason = models.TextField(blank=True)

    # 0 for a call placed by intake or a person; n for the store policy's n-th re-attempt.
    reattempt = models.PositiveSmallIntegerField(default=0)
    # An agent's decision by hand on the order, kept on the call it followed up (the order's latest
    # final call), so the figures count it where they count the call: it stands in for the key
    # press in the rates (calls/figures/stats.py). Written by calls/transitions.py only.
    hand_decision = models.CharField(max_length=16, blank=True)

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CallQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # An order is called once per campaign; call-again children share the order id, and
            # notice calls are not verification calls.
            models.UniqueConstraint(
                fields=["campaign", "order_id"],
                condition=Q(parent__isnull=True, purpose="verify"),
                name="call_unique_order_per_campaign",
            ),
            # One notice call per order and event, however often the shop sends the event.
            models.UniqueConstraint(
                fields=["shop_order", "notice_of"],
                condition=Q(purpose="notice"),
                name="call_one_notice_per_order_event",
            ),
            models.CheckConstraint(
                condition=Q(purpose="verify", notice_of="")
                | (Q(purpose="notice") & ~Q(notice_of="")),
                name="call_notice_names_its_event",
            ),
            # The provider's id identifies one call of one account.
            models.UniqueConstraint(
                fields=["store", "provider_call_id"],
                condition=Q(provider_call_id__isnull=False),
                name="call_unique_provider_id_per_store",
            ),
            models.CheckConstraint(
                condition=Q(state="final", outcome__gt="") | (~Q(state="final") & Q(outcome="")),
                name="call_outcome_iff_final",
            ),
        ]
        indexes = [
            # claim_due_calls: queued calls whose scheduled_for has come.
            models.Index(
                fields=["scheduled_for"], condition=Q(state="queued"), name="call_due_queued_idx"
            ),
            # claim_due_polls: in-progress calls whose next_poll_at has come.
            models.Index(
                fields=["next_poll_at"], condition=Q(state="in_progress"), name="call_due_poll_idx"
            ),
            # expire_sending_leases: calls stuck in sending past their lease.
            models.Index(
                fields=["claimed_at"], condition=Q(state="sending"), name="call_sending_lease_idx"
            ),
            # The order page and call again: an order's calls, oldest first.
            models.Index(fields=["shop_order", "created_at"], name="call_order_created_idx"),
            # /calls/ and reports: newest first, optionally per campaign or store.
            models.Index(fields=["created_at", "id"], name="call_created_idx"),
            models.Index(fields=["campaign", "created_at"], name="call_campaign_created_idx"),
            # A finished campaign's end (calls/views/campaigns.py finished_at): its last call's
            # finalized_at, read as one step back along the index.
            models.Index(fields=["campaign", "finalized_at"], name="call_campaign_finalized_idx"),
            models.Index(fields=["store", "created_at"], name="call_store_created_idx"),
            # The calls list filtered by outcome (of one store, or all), newest first: the
            # page's keyset (created_at, id) read straight off the index, no sort, no rows
            # of other outcomes read and thrown away (tests/calls/test_calls_list_plan.py).
            models.Index(
                fields=["store", "outcome", "-created_at", "-id"],
                name="call_store_outcome_new_idx",
            ),
            models.Index(fields=["outcome", "-created_at", "-id"], name="call_outcome_new_idx"),
            # campaign pages and reports: outcome breakdown per campaign.
            models.Index(fields=["campaign", "outcome"], name="call_campaign_outcome_idx"),
            # /calls/ search: prefix matches (LIKE 'x%') on phone or order id. The pattern
            # operator class lets LIKE use the index whatever the database's collation.
            models.Index(
                fields=["phone"], name="call_phone_idx", opclasses=["varchar_pattern_ops"]
            ),
            models.Index(
                fields=["order_id"], name="call_order_id_idx", opclasses=["varchar_pattern_ops"]
            ),
            # The calls not final yet, whatever their age: the overview's counts of calls
            # waiting and with the provider (stats.calls_in_flight) read only these.
            models.Index(
                fields=["created_at"],
                condition=~Q(state="final"),
                name="call_unfinished_created_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.order_id} → {self.phone}"

    @property
    def is_final(self) -> bool:
        return self.state == self.State.FINAL

    def provider_params(self) -> dict[str, Any]:
        """The `calls` query parameters, the API key excepted."""
        params: dict[str, Any] = {
            "caller_id": self.phone,
            "amount": format(self.amount.normalize(), "f"),
            "voice_id": self.voice_id,
        }
        for name in MESSAGE_TEXT_FIELDS:
            value = getattr(self, name)
            if value:
                params[name] = value
        return params


class TimelineEvent(models.Model):
    """One line of a timeline: when, who (if a person), and the event's values by name (words are
    made when the page is drawn, calls/templatetags/present.py event_details)."""

    kind: str  # each timeline's field, with its own choices
    at = models.DateTimeField(default=timezone.now)
    data = models.JSONField(default=dict, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    class Meta:
        abstract = True
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} @ {self.at:%Y-%m-%d %H:%M:%S}"


class CallEvent(TimelineEvent):
    class Kind(models.TextChoices):
        CREATED = "created", _("Created")
        RESCHEDULED = "rescheduled", _("Rescheduled")
        CLAIMED = "claimed", _("Claimed for sending")
        SENT = "sent", _("Accepted by provider")
        SEND_RETRY = "send_retry", _("Provider unreachable, will retry")
        POLLED = "polled", _("Status checked")
        POLL_ERROR = "poll_error", _("Status check failed")
        FINAL = "final", _("Final outcome")
        WITHDRAWN = "withdrawn", _("Withdrawn")
        ASSIGNED = "assigned", _("Claimed by agent")
        HANDLED = "handled", _("Marked handled")
        CALLBACK = "callback", _("Called again")
        DECIDED = "decided", _("Order decided by hand")
        RELEASED = "released", _("Claim released")
        TAKEN_OVER = "taken_over", _("Taken over from another agent")

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=Kind.choices)

    class Meta(TimelineEvent.Meta):
        indexes = [
            # The call page's timeline.
            models.Index(fields=["call", "at"], name="callevent_call_at_idx"),
        ]


class OrderEvent(TimelineEvent):
    """One line of an order's own history (what people and the store's rules did to the order
    itself); the order page's timeline merges it with its calls' events."""

    class Kind(models.TextChoices):
        FOLLOWUP_OPENED = "followup_opened", _("Put in the follow-up queue")
        FOLLOWUP_CLOSED = "followup_closed", _("Left the follow-up queue")
        CLAIMED = "claimed", _("Claimed by agent")
        RELEASED = "released", _("Claim released")
        TAKEN_OVER = "taken_over", _("Taken over from another agent")
        HANDLED = "handled", _("Marked handled")
        DECIDED = "decided", _("Decided")
        CALLBACK_SET = "callback_set", _("Callback time set")
        PHONE_CHANGED = "phone_changed", _("Phone number changed")
        DELIVERY = "delivery", _("Parcel update")
        DELIVERY_IGNORED = "delivery_ignored", _("Parcel update ignored")
        JUDGED = "judged", _("Judged by the store's rules")

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=24, choices=Kind.choices)

    class Meta(TimelineEvent.Meta):
        indexes = [
            # The order page's timeline.
            models.Index(fields=["order", "at"], name="orderevent_order_at_idx"),
        ]


class BlockedPhone(models.Model):
    """A phone a store will not call: its orders are held for a person (calls/rules.py)."""

    store = models.ForeignKey(
        Store, on_delete=models.CASCADE, related_name="blocked_phones", db_index=False
    )
    phone = models.CharField(max_length=12)  # normalised 923XXXXXXXXX, as Order.phone
    reason = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # Intake looks a batch's phones up in it (calls/rules.py phone_histories).
            models.UniqueConstraint(
                fields=["store", "phone"], name="blockedphone_unique_per_store"
            ),
        ]

    def __str__(self) -> str:
        return self.phone


class OrderBatch(models.Model):
    """One action a person took on many orders at once from /orders/ (decide, call again): each
    order's change is its own transition, event and write-back. A small batch runs while the
    request waits; a larger one in a worker, a chunk of orders per transaction with its place
    (calls/order_batches.py)."""

    class Action(models.TextChoices):
        CONFIRM = "confirm", _("Confirm")
        CANCEL = "cancel", _("Cancel")
        CALL_AGAIN = "call_again", _("Call again")

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")

    action = models.CharField(max_length=16, choices=Action.choices)
    note = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.RUNNING)
    # The orders chosen (or matching the filters) when it was asked for, in order; `position` is
    # how many are done. Capped by calls/order_batches.py MAX_ORDERS.
    order_ids = ArrayField(models.BigIntegerField())
    position = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    # Orders left as they were, counted by why (a code of order_batches.SKIP_REASONS).
    skipped = models.JSONField(default=dict)
    moved_at = models.DateTimeField(default=timezone.now)  # its last chunk: a stalled one resumes
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # look_after_order_batches: running batches that stopped moving.
            models.Index(
                fields=["moved_at"], condition=Q(status="running"), name="orderbatch_running_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} × {len(self.order_ids)}"


class DailyFigures(models.Model):
    """The figures of one day's calls of one campaign and voice id, kept current by PostgreSQL
    triggers in the transaction of every change to the calls (calls/figures/counters.py): the pages
    add up these rows instead of counting calls. The columns are the fields of
    `calls.figures.stats.Figures`. Plain integers, not positive ones: the triggers' upsert proposes
    a row of the change (-1 queued, +1 in flight) before it adds it to the existing one, and
    PostgreSQL checks constraints on the proposed row.
    """

    day = models.DateField()  # in the zone of calls_figures_zone() (calls/figures/counters.py)
    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    # The calls' store (always their campaign's), so the store filter needs no join.
    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="+", db_index=False)
    voice_id = models.PositiveIntegerField()
    calls = models.IntegerField(default=0)
    placed = models.IntegerField(default=0)
    queued = models.IntegerField(default=0)
    in_flight = models.IntegerField(default=0)
    finished = models.IntegerField(default=0)
    confirmed = models.IntegerField(default=0)
    cancelled = models.IntegerField(default=0)
    callback_requested = models.IntegerField(default=0)
    no_input = models.IntegerField(default=0)
    unreachable = models.IntegerField(default=0)
    failed = models.IntegerField(default=0)
    needs_review = models.IntegerField(default=0)
    withdrawn = models.IntegerField(default=0)
    decided_confirmed = models.IntegerField(default=0)
    decided_cancelled = models.IntegerField(default=0)
    decided_by_hand = models.IntegerField(default=0)
    decided_unanswered = models.IntegerField(default=0)
    charges = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    notice_calls = models.IntegerField(default=0)
    notice_charges = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    # The orders created that day (not their calls): what became of their parcels.
    shipped = models.IntegerField(default=0)
    delivered = models.IntegerField(default=0)
    returned = models.IntegerField(default=0)
    delivered_confirmed = models.IntegerField(default=0)
    returned_confirmed = models.IntegerField(default=0)
    delivered_undecided = models.IntegerField(default=0)
    returned_undecided = models.IntegerField(default=0)
    delivered_not_called = models.IntegerField(default=0)
    returned_not_called = models.IntegerField(default=0)
    cancelled_unshipped = models.IntegerField(default=0)
    returns_avoided = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))

    class Meta:
        constraints = [
            # One row per group of a day; its index also serves the overview's and the
            # reports' day ranges (stats.figures_grouped by day and week).
            models.UniqueConstraint(
                fields=["day", "campaign", "voice_id"], name="dailyfigures_unique_group"
            ),
        ]
        indexes = [
            # The campaign list's figures of its page of campaigns, all time.
            models.Index(fields=["campaign", "day"], name="dailyfigures_campaign_day_idx"),
            # Reports filtered by store, over a range of days.
            models.Index(fields=["store", "day"], name="dailyfigures_store_day_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.day} campaign {self.campaign_id} voice {self.voice_id}"


class Upload(models.Model):
    """A file uploaded on the new-campaign page, read once into the database (its rows in
    UploadRow) between its preview and "Launch". The preview and the launch read these rows,
    never the file, so any web or worker process can serve them. A CSV is read as it arrives;
    a workbook waits in UploadFile, `reading`, until a worker has read it (calls/intake/uploads.py),
    then the file is deleted: `previewed`, or `failed` with what was wrong.

    Why a staging table rather than the orders themselves as drafts: an order is unique per
    store and order id and is "known" from the moment it exists, so draft orders would make
    every other intake (the form, import_calls, a second upload) see orders nobody launched,
    and a discarded upload would have to delete orders. Staging rows belong to nobody until the
    launch turns them into orders, under the store's intake lock, a batch at a time.
    """

    class Status(models.TextChoices):
        READING = "reading", _("Being read")
        FAILED = "failed", _("Could not be read")
        PREVIEWED = "previewed", _("Waiting for launch")
        LAUNCHING = "launching", _("Launching")
        LAUNCHED = "launched", _("Launched")

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="uploads")
    filename = models.CharField(max_length=255)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PREVIEWED)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now)
    # What the preview found, counted once at upload time.
    total_rows = models.PositiveIntegerField(default=0)
    valid_rows = models.PositiveIntegerField(default=0)
    rejected_rows = models.PositiveIntegerField(default=0)
    duplicate_rows = models.PositiveIntegerField(default=0)
    known_rows = models.PositiveIntegerField(default=0)
    # The launch's progress: valid rows up to this row number are done (a crashed launch
    # resumes after it), how many became calls, and how many were known by then.
    launched_through_row = models.PositiveIntegerField(default=0)
    launched_rows = models.PositiveIntegerField(default=0)
    imported_rows = models.PositiveIntegerField(default=0)
    known_at_launch = models.PositiveIntegerField(default=0)
    launched_at = models.DateTimeField(null=True, blank=True)
    # Set by the claim and by every batch: a launch that has not moved for a while lost its
    # worker, and the beat hands it to another (calls.intake.uploads.resume_stalled_launches).
    launch_moved_at = models.DateTimeField(null=True, blank=True)
    # The worker's reading of a workbook: the sheet's rows (blank ones included) and the last
    # row read, for the page's progress; when it last moved and how many workers have started
    # on it (a reading that stopped moving is handed to another, calls.intake.uploads.
    # resume_stalled_readings, and only the latest may write); why it failed, as a code and its
    # values (calls.intake.file_errors.describe says it in the reader's language).
    sheet_rows = models.PositiveIntegerField(null=True, blank=True)
    read_through_row = models.PositiveIntegerField(default=0)
    read_moved_at = models.DateTimeField(null=True, blank=True)
    read_attempts = models.PositiveSmallIntegerField(default=0)
    error_code = models.CharField(max_length=32, blank=True)
    error_params = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [
            # The campaign page and the launch page: a campaign's upload waiting or launching.
            models.Index(fields=["campaign", "status"], name="upload_campaign_status_idx"),
            # The sweep of abandoned previews: uploads by age.
            models.Index(fields=["created_at"], name="upload_created_idx"),
            # The beat's look for stalled launches: launching uploads by when they last moved.
            models.Index(
                fields=["launch_moved_at"],
                name="upload_launching_moved_idx",
                condition=Q(status="launching"),
            ),
            # The beat's look for stalled readings: workbooks being read by when they moved.
            models.Index(
                fields=["read_moved_at"],
                name="upload_reading_moved_idx",
                condition=Q(status="reading"),
            ),
        ]

    def __str__(self) -> str:
        return self.filename

    @property
    def progress_percent(self) -> int:
        return 100 * self.launched_rows // self.valid_rows if self.valid_rows else 100

    @property
    def read_percent(self) -> int:
        if not self.sheet_rows:
            return 0
        return min(100, 100 * self.read_through_row // self.sheet_rows)


# The largest file the upload form takes (calls.forms.MAX_UPLOAD_BYTES); the table, too.
UPLOAD_FILE_MAX_BYTES = 10 * 1024 * 1024


class UploadFile(models.Model):
    """A workbook waiting for a worker to read it (web and worker share no disk, only the
    database). Deleted in the transaction that ends its reading, staged or failed."""

    upload = models.OneToOneField(
        Upload, primary_key=True, on_delete=models.CASCADE, related_name="waiting_file"
    )
    content = models.BinaryField()

    class Meta:
        constraints = [
            # A capped row: whatever writes it, no file over the upload limit is kept.
            models.CheckConstraint(
                condition=LessThanOrEqual(Length("content"), UPLOAD_FILE_MAX_BYTES),
                name="uploadfile_content_capped",
            ),
        ]

    def __str__(self) -> str:
        return f"file of upload {self.upload_id}"


class UploadRow(models.Model):
    """One data row of an Upload: a valid order (with its values), a rejected row (with every
    reason), a repeat of an earlier row, or an order the store already had at upload time."""

    class Kind(models.TextChoices):
        VALID = "valid", _("Valid")
        REJECTED = "rejected", _("Rejected")
        DUPLICATE = "duplicate", _("Duplicate in this file")
        KNOWN = "known", _("Already known")

    upload = models.ForeignKey(Upload, on_delete=models.CASCADE, related_name="rows")
    row = models.PositiveIntegerField()  # as a spreadsheet numbers it: the header is row 1
    kind = models.CharField(max_length=16, choices=Kind.choices)
    reason = models.TextField(blank=True)
    # The validated order (empty on a rejected row); the lengths were checked on the way in.
    order_id = models.TextField(blank=True)
    phone = models.CharField(max_length=12, blank=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2, null=True)
    store_name = models.TextField(blank=True)
    voice_id = models.PositiveIntegerField(null=True)
    extras = models.JSONField(default=dict)  # text3..text5, key1..key5 given
    placed_at = models.DateTimeField(null=True)  # the optional placed_at column

    class Meta:
        constraints = [
            # The preview's pages and the launch's batches: an upload's rows of a kind, by row.
            models.UniqueConstraint(
                fields=["upload", "kind", "row"], name="uploadrow_unique_kind_row"
            ),
        ]
        indexes = [
            # Finding repeats and known orders at upload time: an upload's rows by order id.
            models.Index(fields=["upload", "order_id"], name="uploadrow_order_id_idx"),
        ]

    def __str__(self) -> str:
        return f"row {self.row}: {self.get_kind_display()}"


class DeliverySheet(models.Model):
    """A courier's sheet of parcels uploaded on a store's page: the file waits here for a worker
    (web and worker share only the database), which applies it by batches, noting how far it got
    and what it found, and drops the file when it ends (calls/intake/delivery_sheets.py)."""

    class Status(models.TextChoices):
        READING = "reading", _("Being applied")
        DONE = "done", _("Done")
        FAILED = "failed", _("Could not be read")

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="delivery_sheets")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    filename = models.CharField(max_length=255)
    content = models.BinaryField(blank=True)  # the file until a worker has applied it
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.READING)
    rows = models.PositiveIntegerField(default=0)  # the file's data rows, once it has been read
    # The last order (by id) whose rows are applied: the rows go by order id, and a worker that
    # takes over goes on after it.
    applied_through = models.BigIntegerField(default=0)
    # Rows by what became of them: DeliveryVerdict codes and calls/intake/deliveries.py PROBLEMS'.
    counts = models.JSONField(default=dict)
    # The first rows that could not be used, [row, code, params], by row (worded when shown).
    problems = models.JSONField(default=list)
    error_code = models.CharField(max_length=32, blank=True)  # the file's, file_errors' codes
    error_params = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)  # workers that started on it
    moved_at = models.DateTimeField(default=timezone.now)  # its last batch: a stalled one resumes
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # As an upload's file: whatever writes it, no file over the upload limit is kept.
            models.CheckConstraint(
                condition=LessThanOrEqual(Length("content"), UPLOAD_FILE_MAX_BYTES),
                name="deliverysheet_content_capped",
            ),
        ]
        indexes = [
            # The store's page: its latest sheet.
            models.Index(fields=["store", "-created_at"], name="deliverysheet_store_idx"),
            # look_after_uploads: sheets being applied that stopped moving.
            models.Index(
                fields=["moved_at"], condition=Q(status="reading"), name="deliverysheet_reading_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.filename} ({self.get_status_display()})"
