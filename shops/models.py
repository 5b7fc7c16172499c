"""A store's connections to its shop: where orders come from and where decisions go back.

Every credential (a Shopify access token, WooCommerce keys, webhook secrets) is encrypted at rest
like the provider key (calls.crypto, FIELD_ENCRYPTION_KEY), is written but never shown again by
the forms and commands, and never appears in a log line or a stored error. API tokens are kept
only as a SHA-256 digest: shown once when made, then unrecoverable (they are 256 random bits, so
a fast digest is as good as a slow password hash here).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any

from django.db import connection, models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from calls import crypto
from calls.models import Store

DEFAULT_SHOPIFY_API_VERSION = "2025-07"
DEFAULT_COD_GATEWAYS = {
    "shopify": ["Cash on Delivery (COD)"],
    "woocommerce": ["cod"],
}
DEFAULT_TAGS = {
    "confirmed": "robocall-confirmed",
    "cancelled": "robocall-cancelled",
    "no_answer": "robocall-no-answer",
    "skipped": "robocall-skipped",
}
API_TOKEN_PREFIX = "rdk_"
# WooCommerce: what an order status says of the parcel, unless the connection says otherwise.
# A status not listed still means returned when its slug holds "return" or "rto"
# (shops.payloads.delivery_for_woo_status); "" means the status says nothing of the parcel.
DEFAULT_DELIVERY_STATUSES = {"completed": "delivered", "refunded": "returned"}


def default_tags() -> dict[str, str]:
    return dict(DEFAULT_TAGS)


def default_delivery_statuses() -> dict[str, str]:
    return dict(DEFAULT_DELIVERY_STATUSES)


class ShopConnection(models.Model):
    class Kind(models.TextChoices):
        SHOPIFY = "shopify", _("Shopify")
        WOOCOMMERCE = "woocommerce", _("WooCommerce")
        WEBHOOK = "webhook", _("Your own site (signed webhook)")

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="shop_connections")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    shop_domain = models.CharField(max_length=255, blank=True)  # Shopify: x.myshopify.com
    admin_api_url = models.URLField(max_length=500, blank=True)  # Shopify GraphQL endpoint
    site_url = models.URLField(max_length=500, blank=True)  # WooCommerce: https://shop.example
    webhook_url = models.URLField(max_length=500, blank=True)  # a merchant's own receiver
    # Payment gateways (Shopify) or methods (WooCommerce) whose orders are cash on delivery.
    cod_gateways = models.JSONField(default=list, blank=True)
    tags = models.JSONField(default=default_tags, blank=True)  # Shopify: a tag per outcome
    write_note = models.BooleanField(default=False)  # Shopify: also an order note
    # WooCommerce: the order status to set per decision, e.g. {"cancelled": "cancelled"}.
    status_mapping = models.JSONField(default=dict, blank=True)
    # WooCommerce: the parcel's state an order.updated's status means, e.g. {"completed":
    # "delivered"} (merchants who mark orders completed at dispatch: "shipped").
    delivery_statuses = models.JSONField(default=default_delivery_statuses, blank=True)
    secrets_encrypted = models.TextField(blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # WooCommerce's unsigned pings (sent when a webhook is saved there): counted, never a row
    # each, since anyone can send one.
    pings_received = models.PositiveBigIntegerField(default=0)
    last_ping_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # The webhook URL names the store and the kind: one connection answers it.
            models.UniqueConstraint(fields=["store", "kind"], name="shop_connection_one_per_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.store} ← {self.get_kind_display()}"

    # Secrets live together in one encrypted JSON object; each is read by name.
    def secret(self, name: str) -> str:
        if not self.secrets_encrypted:
            return ""
        return str(json.loads(crypto.decrypt(self.secrets_encrypted)).get(name, ""))

    def set_secrets(self, **values: str) -> None:
        current: dict[str, Any] = (
            json.loads(crypto.decrypt(self.secrets_encrypted)) if self.secrets_encrypted else {}
        )
        current.update({name: value for name, value in values.items() if value})
        self.secrets_encrypted = crypto.encrypt(json.dumps(current))

    def has_secret(self, name: str) -> bool:
        return bool(self.secret(name))

    @property
    def cod_methods(self) -> list[str]:
        return list(self.cod_gateways or DEFAULT_COD_GATEWAYS.get(self.kind, []))

    def shopify_admin_api_url(self) -> str:
        if self.admin_api_url:
            return self.admin_api_url
        version = DEFAULT_SHOPIFY_API_VERSION
        return f"https://{self.shop_domain}/admin/api/{version}/graphql.json"

    def target_url(self) -> str:
        """Where this connection's requests go (the address its sent secrets travel to)."""
        if self.kind == self.Kind.SHOPIFY:
            return self.shopify_admin_api_url()
        if self.kind == self.Kind.WOOCOMMERCE:
            return self.site_url
        return self.webhook_url

    def count_ping(self) -> None:
        """One more unsigned ping: one row's counter, however many come."""
        ShopConnection.objects.filter(pk=self.pk).update(
            pings_received=models.F("pings_received") + 1, last_ping_at=timezone.now()
        )

    def last_received(self) -> ReceivedWebhook | None:
        """The latest signed delivery the shop sent (the Integrations page shows it)."""
        return ReceivedWebhook.objects.filter(connection=self).order_by("-id").first()


class ReceivedWebhook(models.Model):
    """A delivery a shop sent, by its own id: a redelivery of the same id changes nothing.

    The web process stores the signed body and answers; a worker takes it in (shops/inbox.py:
    the order made, the cancellation or the parcel's news applied), each connection's
    deliveries in the order they arrived. Until then `processed_at` is empty; afterwards the
    body is dropped (the order keeps what robodash needs) and `outcome` and `result` say what
    became of it."""

    class Outcome(models.TextChoices):
        WAITING = "", _("Waiting for a worker")
        QUEUED = "queued", _("Order queued for its call")
        SKIPPED = "skipped", _("Order skipped by a rule")
        HELD = "held", _("Order held by a rule")
        KNOWN = "known", _("Order already known")
        REJECTED = "rejected", _("Order cannot be called")
        NOT_COD = "not_cod", _("Not cash on delivery")
        WITHDRAWN = "withdrawn", _("Withdrawn before its call")
        TOO_LATE = "too_late", _("Cancelled after its call")
        EARLY_CANCEL = "early_cancel", _("Cancelled before the order arrived")
        RECORDED = "recorded", _("Parcel news recorded")
        IGNORED = "ignored", _("Ignored")
        UNREADABLE = "unreadable", _("Unreadable")
        FAILED = "failed", _("Could not be taken in")

    connection = models.ForeignKey(ShopConnection, on_delete=models.CASCADE)
    delivery_id = models.CharField(max_length=200)
    topic = models.CharField(max_length=100, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    # The signed body as it came, kept until a worker has taken it in.
    body = models.BinaryField(default=b"", blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True)
    result = models.CharField(max_length=300, blank=True)
    # Tries that failed unexpectedly (the database went away mid-way, a bug): after
    # shops.inbox.MAX_ATTEMPTS it is set aside as failed, its body kept, so one bad delivery
    # cannot hold up the shop's others.
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints = [
            # Inserted before anything else: the second of two concurrent deliveries loses here.
            models.UniqueConstraint(
                fields=["connection", "delivery_id"], name="received_webhook_once"
            ),
        ]
        indexes = [
            # The Integrations page's "last webhook received" of a connection.
            models.Index(fields=["connection", "-id"], name="received_webhook_latest_idx"),
            # shops.inbox: the deliveries a worker has still to take in, oldest first.
            models.Index(
                fields=["connection", "id"],
                condition=models.Q(processed_at__isnull=True),
                name="received_webhook_waiting_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.topic or 'webhook'} {self.delivery_id}"

    def insert_once(self) -> bool:
        """Store this delivery unless its connection has one of that id; whether it was new.

        One statement, which a repeat leaves as it found it (no error to catch, no savepoint
        for a caller's transaction): the webhook's whole write, on the busiest path there is."""
        fields = [f for f in self._meta.concrete_fields if not f.primary_key]
        columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
        values = [f.get_db_prep_save(f.pre_save(self, add=True), connection) for f in fields]
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {connection.ops.quote_name(self._meta.db_table)} ({columns}) "
                f"VALUES ({', '.join(['%s'] * len(fields))}) "
                "ON CONFLICT (connection_id, delivery_id) DO NOTHING RETURNING id",
                values,
            )
            row = cursor.fetchone()
        if row is not None:
            self.pk = row[0]
        return row is not None


class EarlyCancellation(models.Model):
    """A shop's cancellation of an order robodash did not have yet (the shop sent it first, or
    it was taken in first): the order is withdrawn the moment it arrives (shops/intake.py)."""

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="+")
    order_id = models.CharField(max_length=100)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            # Looked up by each shop order as it is made; a cancellation sent twice is one row.
            models.UniqueConstraint(fields=["store", "order_id"], name="early_cancellation_once"),
        ]

    def __str__(self) -> str:
        return f"{self.order_id} cancelled early"


def hash_api_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ApiToken(models.Model):
    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True)
    token_hash = models.CharField(max_length=64, editable=False)
    prefix = models.CharField(max_length=12, editable=False)  # shown to tell tokens apart
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # Each API request looks its bearer token up by this digest.
            models.UniqueConstraint(fields=["token_hash"], name="api_token_unique_hash"),
        ]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.store})"

    @classmethod
    def issue(cls, store: Store, name: str = "") -> tuple[ApiToken, str]:
        """A new token for `store`: (the row, the token itself, to show once)."""
        token = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = cls.objects.create(
            store=store, name=name, token_hash=hash_api_token(token), prefix=token[:10]
        )
        return row, token

    @classmethod
    def find(cls, token: str) -> ApiToken | None:
        """The live token `token` names, or None (unknown or revoked)."""
        if not token.startswith(API_TOKEN_PREFIX):
            return None
        return (
            cls.objects.select_related("store")
            .filter(token_hash=hash_api_token(token), revoked_at__isnull=True)
            .first()
        )


class WriteBack(models.Model):
    """The outbox: what one shop connection is to be told about one order, written in the
    transaction that settled the order or changed its decision, delivered by the workers
    (shops/outbox.py) until it lands or a day has passed. A crash or a lost Redis loses none: the
    beat sweep finds due rows in the database.

    One row per (order, connection), whatever happens to the decision: a change bumps `version`
    and makes the row due again, and the sender tells the order as it stands when it sends. So a
    decision changed twice before anything went out is sent once, and the shop ends with the
    latest. `told_event`/`told_version` are what the shop last acknowledged: a re-send of what it
    already has is skipped, and a change is told as "was …"."""

    class State(models.TextChoices):
        PENDING = "pending", _("Waiting to be sent")
        SENDING = "sending", _("Being sent")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed")

    class Event(models.TextChoices):
        CONFIRMED = "confirmed", _("Confirmed")
        CANCELLED = "cancelled", _("Cancelled")
        NO_ANSWER = "no_answer", _("No answer")
        SKIPPED = "skipped", _("Skipped by a rule")  # the store's rules said not to call it

    # last_error holds why the latest try failed as `code[:detail]` (shops.writeback's
    # WriteBackFailed.stored), after `gave_up:` when a day of retries ran out: never the shop's
    # own reply, which may say anything and would be shown on the order page.
    GAVE_UP = "gave_up"

    order = models.ForeignKey("calls.Order", on_delete=models.CASCADE, related_name="write_backs")
    connection = models.ForeignKey(ShopConnection, on_delete=models.CASCADE, related_name="+")
    event = models.CharField(max_length=16, choices=Event.choices)  # the latest queued
    version = models.PositiveIntegerField(default=1)  # 1, and one more per change of `event`
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)  # of the current version
    next_try_at = models.DateTimeField(default=timezone.now)
    lease_until = models.DateTimeField(null=True, blank=True)  # while sending
    last_error = models.CharField(max_length=500, blank=True)
    # What the latest send did, as steps {"code": …, values…} (RESULT_WORDS), worded by summary().
    result = models.JSONField(default=list, blank=True)
    # What the shop last acknowledged ("" and 0: nothing yet).
    told_event = models.CharField(max_length=16, choices=Event.choices, blank=True)
    told_version = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    give_up_at = models.DateTimeField(null=True, blank=True)  # a day after the version's first try
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # queue_write_backs finds an order's row for a connection by this pair, and bumps it.
            models.UniqueConstraint(
                fields=["order", "connection"], name="write_back_one_per_order_connection"
            ),
        ]
        indexes = [
            # The sweep's due rows: pending ones by their time, sending ones past their lease.
            models.Index(
                fields=["next_try_at"],
                name="write_back_pending_due_idx",
                condition=models.Q(state="pending"),
            ),
            models.Index(
                fields=["lease_until"],
                name="write_back_sending_lease_idx",
                condition=models.Q(state="sending"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_event_display()} → {self.connection} ({self.get_state_display()})"

    @property
    def delivery_id(self) -> str:
        """The id a send of the current version carries (the webhook's Robodash-Delivery)."""
        return f"wb_{self.pk}_{self.version}"

    def summary(self) -> str:
        """What the latest send did, in the reader's language ("" before one did anything)."""
        said = []
        for step in self.result if isinstance(self.result, list) else []:
            words = RESULT_WORDS.get(str(step.get("code"))) if isinstance(step, dict) else None
            if words is None:
                continue  # a code this version does not know
            values = {key: _listed(value) for key, value in step.items()}
            try:
                said.append(str(words) % values)
            except (KeyError, TypeError, ValueError):
                continue
        return "; ".join(said)

    def problem(self) -> str:
        """Why the latest try failed, in the reader's language ("" when it did not)."""
        if not self.last_error:
            return ""
        code, _sep, detail = self.last_error.partition(":")
        gave_up = code == self.GAVE_UP
        if gave_up:
            code, _sep, detail = detail.partition(":")
        if code == "address":
            words = _("Not sent. %(why)s") % {"why": ADDRESS_REFUSALS.get(detail, detail)}
        else:
            # An older row's free text (or a code this version does not know) is not shown:
            # it may be a shop's reply.
            words = WRITE_BACK_PROBLEMS.get(code, _("The write-back failed.")) % {"status": detail}
        if gave_up:
            return _("Gave up after a day: %(problem)s") % {"problem": words}
        return str(words)


def _listed(value: Any) -> Any:
    return ", ".join(str(item) for item in value) if isinstance(value, list) else value


# Words for the steps shops.writeback's functions return (WriteBack.result): %(tags)s the tags,
# %(status)s an order status or an HTTP status.
RESULT_WORDS = {
    "tagged": _("tagged %(tags)s"),
    "untagged": _("robodash's other tags removed (%(tags)s)"),
    "no_tag": _("no tag set for this decision"),
    "note_written": _("robodash's line in the order note written"),
    "note_unchanged": _("the order note already said so"),
    "note_added": _("order note added"),
    "note_already_there": _("order note already there (an earlier answer was lost)"),
    "status_set": _("order status set to %(status)s"),
    "delivered": _("delivered (HTTP %(status)s)"),
    "already_told": _("not sent: the shop already has this decision"),
    "undecided": _("not sent: the order has no decision to tell"),
}

# Words for WriteBackFailed's codes; %(status)s is the HTTP status.
WRITE_BACK_PROBLEMS = {
    "http": _("It answered HTTP %(status)s."),
    "throttled": _("It asked to slow down (HTTP %(status)s)."),
    "credentials": _("It refused the credentials (HTTP %(status)s): check them in Integrations."),
    "unknown_order": _("It does not know this order (HTTP %(status)s)."),
    "refused": _("It refused the request (HTTP %(status)s)."),
    "redirect": _("It answered with a redirect (HTTP %(status)s), which robodash does not follow."),
    "gone": _("It answered HTTP %(status)s Gone: the address takes no more deliveries."),
    "not_json": _("It answered something that is not JSON (HTTP %(status)s)."),
    "unreadable": _("Its answer could not be read (HTTP %(status)s)."),
    "timeout": _("It did not answer in time."),
    "connect": _("It could not be reached."),
    "request": _("The request failed before an answer came."),
}

# Words for shops.outgoing.AddressRefused's codes: the forms' errors and the order page's reason.
ADDRESS_REFUSALS = {
    "malformed": _("This is not a whole web address, e.g. https://shop.example.pk."),
    "scheme": _("Use an https:// address: robodash sends to no other kind."),
    "credentials": _("An address with a user name or password in it (user:pass@) is not accepted."),
    "fragment": _("An address with a #… part is not accepted."),
    "query": _("The shop's address takes no ?… part: give the site's address only."),
    "internal_name": _(
        "This name only means something inside a network (localhost, *.internal…): "
        "give the shop's public address."
    ),
    "private_address": _(
        "This address is private, local or reserved, not on the public internet: "
        "give the shop's public https address."
    ),
    "unresolvable": _("No address was found for this name: check it."),
}
