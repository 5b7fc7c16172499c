"""The Integrations forms: one per kind of connection, plus an API token's name.

Secrets are write-only, as the provider key is: never rendered back, a blank field keeps what
is stored, and a connection's first save needs them all. A changed address is the exception: the
secrets the connection sends there must be entered again, or whoever can change the address could
have the stored token sent to a server of their own. Every address robodash sends to is checked
by shops.outgoing (public https only, unless ROBODASH_ALLOW_PRIVATE_TARGETS). connect_shop fills
these same forms, so the page and the command accept the same connections.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from calls.models import Order
from shops import outgoing
from shops.models import (
    ADDRESS_REFUSALS,
    DEFAULT_COD_GATEWAYS,
    DEFAULT_DELIVERY_STATUSES,
    DEFAULT_TAGS,
    ShopConnection,
)
from shops.payloads import woo_status_slug

if TYPE_CHECKING:
    from django.utils.functional import _StrOrPromise as StrOrPromise

WOO_STATUSES = [
    ("", "leave the status as it is"),
    ("processing", "processing"),
    ("on-hold", "on-hold"),
    ("completed", "completed"),
    ("cancelled", "cancelled"),
    ("failed", "failed"),
]


def _secret(label: StrOrPromise, help_text: str = "") -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        max_length=500,
        help_text=help_text or _("Write-only: leave blank to keep the stored one."),
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )


# A blank secret field keeps the stored secret, except after the address it goes to changed.
SEND_AGAIN = {
    "access_token": _("The address changed: enter the token again to send it to the new address."),
    "consumer_key": _("The address changed: enter the key again to send it to the new address."),
    "consumer_secret": _(
        "The address changed: enter the secret again to send it to the new address."
    ),
}


def outgoing_address(*, query_allowed: bool = True) -> Callable[[str], None]:
    """A validator: robodash may send requests to this address (shops.outgoing)."""

    def validate(value: str) -> None:
        try:
            outgoing.check_target(value, query_allowed=query_allowed)
        except outgoing.AddressRefused as refused:
            raise ValidationError(ADDRESS_REFUSALS[refused.code], code=refused.code) from None

    return validate


# What a status may mean in ShopConnection.delivery_statuses, as a merchant writes it: "ignore"
# is stored as "" (the status says nothing of the parcel).
DELIVERY_WORDS = {
    "shipped": Order.Delivery.SHIPPED,
    "delivered": Order.Delivery.DELIVERED,
    "returned": Order.Delivery.RETURNED,
    "ignore": Order.Delivery.NONE,
}
# A WooCommerce status slug (post_status holds 20 characters, wc- included).
WOO_SLUG = re.compile(r"\A[a-z0-9][a-z0-9_-]{0,39}\Z")


def parse_delivery_statuses(text: str) -> dict[str, str]:
    """`status = state` pairs, one per line or comma-separated, as a connection's
    delivery_statuses; ValidationError naming each pair that is not one. The Integrations form
    and connect_shop's --woo-status both read them here."""
    mapping: dict[str, str] = {}
    errors = []
    for item in filter(None, (part.strip() for part in re.split(r"[\n,]", text))):
        status, equals, word = (piece.strip() for piece in item.partition("="))
        slug = woo_status_slug(status)
        if not equals or not WOO_SLUG.match(slug):
            errors.append(
                ValidationError(
                    _("%(item)s is not status = state, e.g. completed = delivered."),
                    code="pair",
                    params={"item": item[:60]},
                )
            )
        elif word.lower() not in DELIVERY_WORDS:
            errors.append(
                ValidationError(
                    _("%(item)s: the state is one of shipped, delivered, returned or ignore."),
                    code="state",
                    params={"item": item[:60]},
                )
            )
        elif slug in mapping:
            errors.append(
                ValidationError(
                    _("The status %(status)s is given twice."),
                    code="twice",
                    params={"status": slug},
                )
            )
        else:
            mapping[slug] = DELIVERY_WORDS[word.lower()]
    if errors:
        raise ValidationError(errors)
    return mapping


def delivery_statuses_text(mapping: object) -> str:
    """A connection's delivery_statuses as parse_delivery_statuses reads them."""
    words = {value: word for word, value in DELIVERY_WORDS.items()}
    pairs = sorted(mapping.items()) if isinstance(mapping, dict) else ()
    return "\n".join(f"{slug} = {words.get(value, 'ignore')}" for slug, value in pairs)


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


class ConnectionForm(forms.Form):
    kind: str = ""
    secret_fields: tuple[str, ...] = ()
    # The secrets a request to the connection's address carries (not those robodash checks the
    # shop's own webhooks with, which never leave).
    sent_secrets: tuple[str, ...] = ()
    cod_gateways = forms.CharField(
        label=_("Cash on delivery is"),
        required=False,
        max_length=500,
        help_text=_("Comma-separated; orders paid any other way are acknowledged and not called."),
    )

    def __init__(self, *args: Any, connection: ShopConnection | None = None, **kwargs: Any):
        self.connection = connection
        if connection is not None and "initial" not in kwargs:
            kwargs["initial"] = self.initial_from(connection)
        super().__init__(*args, **kwargs)
        self.fields["cod_gateways"].initial = self.fields["cod_gateways"].initial or ", ".join(
            DEFAULT_COD_GATEWAYS.get(self.kind, [])
        )

    def initial_from(self, connection: ShopConnection) -> dict[str, Any]:
        return {"cod_gateways": ", ".join(connection.cod_methods)}

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for name in self.secret_fields:
            has_it = self.connection is not None and self.connection.has_secret(name)
            if not data.get(name) and not has_it:
                self.add_error(name, _("Needed to connect."))
        if self.connection is not None and not self.errors:
            moved = copy.copy(self.connection)
            self.apply(moved, data)
            if moved.target_url() != self.connection.target_url():
                for name in self.sent_secrets:
                    if not data.get(name):
                        self.add_error(name, SEND_AGAIN[name])
        return data

    def save(self, store: Any) -> ShopConnection:
        connection = self.connection or ShopConnection(store=store, kind=self.kind)
        data = self.cleaned_data
        connection.cod_gateways = _names(data.get("cod_gateways", ""))
        self.apply(connection, data)
        connection.set_secrets(**{name: data.get(name, "") for name in self.secret_fields})
        connection.save()
        return connection

    def apply(self, connection: ShopConnection, data: dict[str, Any]) -> None:
        raise NotImplementedError


class ShopifyForm(ConnectionForm):
    kind = ShopConnection.Kind.SHOPIFY
    secret_fields = ("access_token", "webhook_secret")
    sent_secrets = ("access_token",)
    # A plain <name>.myshopify.com host and nothing else: the Admin API token is sent to
    # https://<domain>/, so a '#', '/', '@', '?' or ':' would send it to another host.
    shop_domain = forms.RegexField(
        label=_("Shop domain"),
        regex=re.compile(r"\A[a-z0-9][a-z0-9-]*\.myshopify\.com\Z", re.IGNORECASE),
        strip=True,  # a pasted domain often ends in a space
        error_messages={"invalid": _("The shop's x.myshopify.com domain, e.g. kk.myshopify.com.")},
    )
    access_token = _secret(_("Admin API access token"))
    webhook_secret = _secret(_("Webhook signing secret"))
    admin_api_url = forms.URLField(
        assume_scheme="https",
        label=_("Admin API endpoint"),
        required=False,
        max_length=500,
        validators=[outgoing_address()],
        help_text=_("Leave blank for https://DOMAIN/admin/api/…/graphql.json."),
    )
    tag_confirmed = forms.CharField(label=_("Tag when confirmed"), max_length=40)
    tag_cancelled = forms.CharField(label=_("Tag when cancelled"), max_length=40)
    tag_no_answer = forms.CharField(label=_("Tag when never answered"), max_length=40)
    tag_skipped = forms.CharField(label=_("Tag when skipped by the store's rules"), max_length=40)
    write_note = forms.BooleanField(label=_("Also write an order note"), required=False)
    field_order = ["shop_domain", "access_token", "webhook_secret", "admin_api_url"]

    def initial_from(self, connection: ShopConnection) -> dict[str, Any]:
        tags = {**DEFAULT_TAGS, **(connection.tags or {})}
        return {
            **super().initial_from(connection),
            "shop_domain": connection.shop_domain,
            "admin_api_url": connection.admin_api_url,
            "write_note": connection.write_note,
            **{f"tag_{event}": tag for event, tag in tags.items()},
        }

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        for event, tag in DEFAULT_TAGS.items():
            self.fields[f"tag_{event}"].initial = self.initial.get(f"tag_{event}", tag)

    def clean_shop_domain(self) -> str:
        domain: str = self.cleaned_data["shop_domain"].lower()  # a host name has no case
        if not self.data.get(self.add_prefix("admin_api_url")):
            outgoing_address()(f"https://{domain}/")  # the default endpoint's host
        return domain

    def apply(self, connection: ShopConnection, data: dict[str, Any]) -> None:
        connection.shop_domain = data["shop_domain"]
        connection.admin_api_url = data.get("admin_api_url", "")
        connection.write_note = data.get("write_note", False)
        connection.tags = {event: data[f"tag_{event}"].strip() for event in DEFAULT_TAGS}


class WooCommerceForm(ConnectionForm):
    kind = ShopConnection.Kind.WOOCOMMERCE
    secret_fields = ("consumer_key", "consumer_secret", "webhook_secret")
    sent_secrets = ("consumer_key", "consumer_secret")
    site_url = forms.URLField(
        assume_scheme="https",
        label=_("Shop address"),
        help_text=_("e.g. https://shop.example.pk"),
        max_length=500,
        # The REST paths are added after it: a ?… part would make them a query instead.
        validators=[outgoing_address(query_allowed=False)],
    )
    consumer_key = _secret(_("REST API consumer key"))
    consumer_secret = _secret(_("REST API consumer secret"))
    webhook_secret = _secret(_("Webhook secret"))
    status_confirmed = forms.ChoiceField(
        label=_("Status when confirmed"), choices=WOO_STATUSES, required=False
    )
    status_cancelled = forms.ChoiceField(
        label=_("Status when cancelled"), choices=WOO_STATUSES, required=False
    )
    status_no_answer = forms.ChoiceField(
        label=_("Status when never answered"), choices=WOO_STATUSES, required=False
    )
    status_skipped = forms.ChoiceField(
        label=_("Status when skipped by the store's rules"), choices=WOO_STATUSES, required=False
    )
    delivery_statuses = forms.CharField(
        label=_("The parcel, by order status"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 4, "class": "mono"}),
        help_text=_(
            "One status = state per line: shipped, delivered, returned or ignore (if you mark "
            "orders completed when they leave, write completed = shipped). A status not listed "
            "whose name holds return or rto means returned. A status robodash set itself is "
            "never read as the parcel's."
        ),
    )
    field_order = ["site_url", "consumer_key", "consumer_secret", "webhook_secret"]

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["delivery_statuses"].initial = self.initial.get(
            "delivery_statuses", delivery_statuses_text(DEFAULT_DELIVERY_STATUSES)
        )

    def initial_from(self, connection: ShopConnection) -> dict[str, Any]:
        mapping = connection.status_mapping or {}
        return {
            **super().initial_from(connection),
            "site_url": connection.site_url,
            **{f"status_{event}": mapping.get(event, "") for event in DEFAULT_TAGS},
            "delivery_statuses": delivery_statuses_text(connection.delivery_statuses),
        }

    def clean_delivery_statuses(self) -> dict[str, str]:
        return parse_delivery_statuses(self.cleaned_data.get("delivery_statuses", ""))

    def apply(self, connection: ShopConnection, data: dict[str, Any]) -> None:
        connection.site_url = data["site_url"]
        connection.status_mapping = {
            event: data[f"status_{event}"] for event in DEFAULT_TAGS if data.get(f"status_{event}")
        }
        connection.delivery_statuses = data.get("delivery_statuses", {})


class WebhookForm(ConnectionForm):
    kind = ShopConnection.Kind.WEBHOOK
    # Its signing secret is robodash's own and only a signature made with it is sent: a new URL
    # needs nothing entered again.
    webhook_url = forms.URLField(
        assume_scheme="https",
        label=_("Your URL for decisions"),
        help_text=_("https://…"),
        max_length=500,
        validators=[outgoing_address()],
    )

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        del self.fields["cod_gateways"]  # orders come through the API: nothing to filter

    def initial_from(self, connection: ShopConnection) -> dict[str, Any]:
        return {"webhook_url": connection.webhook_url}

    def apply(self, connection: ShopConnection, data: dict[str, Any]) -> None:
        connection.webhook_url = data["webhook_url"]


FORMS: dict[str, type[ConnectionForm]] = {
    ShopConnection.Kind.SHOPIFY: ShopifyForm,
    ShopConnection.Kind.WOOCOMMERCE: WooCommerceForm,
    ShopConnection.Kind.WEBHOOK: WebhookForm,
}


class ApiTokenForm(forms.Form):
    name = forms.CharField(label=_("What it is for"), max_length=100, required=False)
