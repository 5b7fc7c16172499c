"""Requests to merchants' addresses go only to public https, checked when an address is saved
(the Integrations forms, connect_shop) and again when it is used (resolved once, every address
checked, the connection made to the checked address, no redirect followed); a changed address
needs its token entered again.

Public DNS cannot be reached from where the tests run, so the resolver
(`shops.outgoing.lookup_addresses`) is replaced where a name must resolve; and where the checked
address is a public one, the socket's connect is intercepted instead of sent. Everything else is
real: the page, the command, requests and urllib3, the stand-ins over HTTP on 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import io
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator

import pytest
import requests
import urllib3.util.connection
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core.management import call_command
from django.core.management.base import CommandError

from shops import outgoing
from shops.models import ShopConnection
from shops.writeback import WooCommerceTarget, WriteBackFailed, deliver_webhook
from standins.server import StandIns
from tests.support.pages import text_of

PUBLIC = "93.184.215.14"  # an address on the public internet; never actually connected to
TOKEN, HOOK_SECRET = "shpat_outgoing_0123456789", "shpss_outgoing"
WOO_KEY, WOO_SECRET = "ck_outgoing", "cs_outgoing"

PRIVATE_MESSAGE = "This address is private, local or reserved"
REFUSED_EVERYWHERE = [
    ("127.0.0.1:5432", PRIVATE_MESSAGE),
    ("localhost:6379", "Enter a valid URL."),
    ("https://localhost:6379/", "This name only means something inside a network"),
    ("https://[::1]/", PRIVATE_MESSAGE),
    ("https://10.0.0.1/", PRIVATE_MESSAGE),
    ("https://169.254.169.254/latest/meta-data/", PRIVATE_MESSAGE),
    ("https://metadata.google.internal/computeMetadata/v1/", "inside a network"),
    ("https://user:pass@shop.example.pk/", "(user:pass@) is not accepted"),
    ("ftp://shop.example.pk/", "Use an https:// address"),
    ("http://shop.example.pk/", "Use an https:// address"),
]
# Each kind's address field (and connect_shop's option for it) refuses each of them; the
# WooCommerce site also a query string, after which the REST path would be appended.
OPTIONS = {"shopify": "--admin-api-url", "woocommerce": "--site-url", "webhook": "--url"}
REFUSED = [(kind, *case) for kind in OPTIONS for case in REFUSED_EVERYWHERE] + [
    ("woocommerce", "https://shop.example.pk/?x=", "The shop's address takes no ?… part")
]


@pytest.fixture
def production(settings, monkeypatch) -> list[tuple[str, int]]:
    """Private targets not allowed, as in production; every name resolves to PUBLIC (the
    resolver's calls are listed)."""
    settings.ROBODASH_ALLOW_PRIVATE_TARGETS = False
    lookups: list[tuple[str, int]] = []

    def public(host: str, port: int) -> list[str]:
        lookups.append((host, port))
        return [PUBLIC]

    monkeypatch.setattr(outgoing, "lookup_addresses", public)
    return lookups


def resolving(monkeypatch, *answers: list[str]) -> list[str]:
    """The resolver answers each of `answers` in turn (the last one from then on)."""
    asked: list[str] = []

    def lookup(host: str, port: int) -> list[str]:
        asked.append(host)
        return answers[min(len(asked), len(answers)) - 1]

    monkeypatch.setattr(outgoing, "lookup_addresses", lookup)
    return asked


# --- When an address is saved -------------------------------------------------------------------


def integrations(store) -> str:
    return f"/settings/stores/{store.pk}/integrations/"


def form_data(kind: str, address: str) -> dict[str, str]:
    if kind == "shopify":
        fields = {
            "shop_domain": "kk.myshopify.com",
            "access_token": TOKEN,
            "webhook_secret": HOOK_SECRET,
            "admin_api_url": address,
            "tag_confirmed": "robocall-confirmed",
            "tag_cancelled": "robocall-cancelled",
            "tag_no_answer": "robocall-no-answer",
            "tag_skipped": "robocall-skipped",
        }
    elif kind == "woocommerce":
        fields = {
            "site_url": address,
            "consumer_key": WOO_KEY,
            "consumer_secret": WOO_SECRET,
            "webhook_secret": HOOK_SECRET,
        }
    else:
        fields = {"webhook_url": address}
    return {"kind": kind, **{f"{kind}-{name}": value for name, value in fields.items()}}


@pytest.mark.parametrize(("kind", "address", "message"), REFUSED)
def test_the_integrations_form_refuses_an_address_that_is_not_public_https(
    admin, store, production, kind, address, message
):
    answer = admin.post(integrations(store), form_data(kind, address))

    assert answer.status_code == 200
    assert message in text_of(answer)
    assert not ShopConnection.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["shopify", "woocommerce", "webhook"])
def test_the_integrations_form_takes_a_public_https_address_after_resolving_it(
    admin, store, production, kind
):
    answer = admin.post(integrations(store), form_data(kind, "https://shop.example.pk/robodash"))

    assert answer.status_code in (200, 302)  # a webhook's first save shows its secret
    assert ShopConnection.objects.get(kind=kind).target_url() == "https://shop.example.pk/robodash"
    assert ("shop.example.pk", 443) in production


@pytest.mark.django_db
def test_a_name_that_resolves_to_a_private_address_is_refused_when_saved(
    admin, store, settings, monkeypatch
):
    settings.ROBODASH_ALLOW_PRIVATE_TARGETS = False
    resolving(monkeypatch, [PUBLIC, "10.1.2.3"])

    answer = admin.post(integrations(store), form_data("webhook", "https://hooks.example.pk/"))

    assert PRIVATE_MESSAGE in text_of(answer)
    assert not ShopConnection.objects.exists()


def connect_shop(store, *args: str) -> str:
    out = io.StringIO()
    call_command("connect_shop", store.name, *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def shop_secrets(monkeypatch) -> None:
    for name, value in {
        "SHOPIFY_ACCESS_TOKEN": TOKEN,
        "SHOPIFY_WEBHOOK_SECRET": HOOK_SECRET,
        "WC_CONSUMER_KEY": WOO_KEY,
        "WC_CONSUMER_SECRET": WOO_SECRET,
        "WC_WEBHOOK_SECRET": HOOK_SECRET,
    }.items():
        monkeypatch.setenv(name, value)


@pytest.mark.django_db
@pytest.mark.parametrize(("kind", "address", "message"), REFUSED)
def test_connect_shop_refuses_an_address_that_is_not_public_https(
    store, production, shop_secrets, kind, address, message
):
    option = OPTIONS[kind]
    shop_domain = ["--shop-domain", "kk.myshopify.com"] if kind == "shopify" else []

    with pytest.raises(CommandError) as refused:
        connect_shop(store, kind, *shop_domain, option, address)

    assert f"{option}: " in str(refused.value) and message in str(refused.value)
    assert not ShopConnection.objects.exists()


@pytest.mark.django_db
def test_connect_shop_refuses_a_shop_domain_the_form_refuses(store, production, shop_secrets):
    # It ends in .myshopify.com, and its default endpoint would be https://127.0.0.1/…
    with pytest.raises(CommandError, match="--shop-domain: The shop's x.myshopify.com domain"):
        connect_shop(store, "shopify", "--shop-domain", "127.0.0.1#.myshopify.com")
    assert not ShopConnection.objects.exists()


# --- A changed address needs its secret again (issue 19, point 3) ------------------------------


@pytest.mark.django_db
def test_changing_the_admin_api_endpoint_with_the_token_left_blank_is_refused(admin, store):
    admin.post(integrations(store), form_data("shopify", "https://kk.example.pk/graphql.json"))
    moved = form_data("shopify", "https://elsewhere.example.pk/graphql.json")

    refused = admin.post(integrations(store), moved | {"shopify-access_token": ""})

    assert "enter the token again to send it to the new address" in text_of(refused)
    connection = ShopConnection.objects.get()
    assert connection.admin_api_url == "https://kk.example.pk/graphql.json"
    assert connection.secret("access_token") == TOKEN
    # Anything else may still change with the token left blank; a new address with it entered.
    kept = form_data("shopify", "https://kk.example.pk/graphql.json")
    admin.post(integrations(store), kept | {"shopify-access_token": "", "shopify-write_note": "on"})
    connection.refresh_from_db()
    assert connection.write_note is True
    admin.post(integrations(store), moved | {"shopify-access_token": "shpat_new_token"})
    connection.refresh_from_db()
    assert connection.admin_api_url == "https://elsewhere.example.pk/graphql.json"
    assert connection.secret("access_token") == "shpat_new_token"


@pytest.mark.django_db
def test_changing_the_shop_domain_or_the_woocommerce_site_needs_the_secrets_again(admin, store):
    admin.post(integrations(store), form_data("shopify", ""))
    admin.post(integrations(store), form_data("woocommerce", "https://shop.example.pk"))

    shopify = admin.post(
        integrations(store),
        form_data("shopify", "")
        | {"shopify-shop_domain": "other.myshopify.com", "shopify-access_token": ""},
    )
    woo = admin.post(
        integrations(store),
        form_data("woocommerce", "https://other.example.pk")
        | {"woocommerce-consumer_key": "", "woocommerce-consumer_secret": ""},
    )

    assert "enter the token again to send it to the new address" in text_of(shopify)
    assert "enter the key again to send it to the new address" in text_of(woo)
    assert "enter the secret again to send it to the new address" in text_of(woo)
    assert {c.target_url() for c in ShopConnection.objects.all()} == {
        "https://kk.myshopify.com/admin/api/2025-07/graphql.json",
        "https://shop.example.pk",
    }


@pytest.mark.django_db
def test_connect_shop_refuses_a_new_address_without_the_token(store, shop_secrets, monkeypatch):
    connect_shop(store, "shopify", "--shop-domain", "kk.myshopify.com")
    monkeypatch.delenv("SHOPIFY_ACCESS_TOKEN")

    with pytest.raises(CommandError, match="set SHOPIFY_ACCESS_TOKEN in the environment"):
        connect_shop(
            store, "shopify", "--shop-domain", "kk.myshopify.com",
            "--admin-api-url", "https://elsewhere.example.pk/graphql.json",
        )  # fmt: skip

    connection = ShopConnection.objects.get()
    assert connection.admin_api_url == "" and connection.secret("access_token") == TOKEN


# --- When a request is sent ---------------------------------------------------------------------


@pytest.fixture
def stand_ins() -> Iterator[StandIns]:
    with StandIns() as stand_ins:
        stand_ins.control("POST", "receivers", {"name": "merchant", "secret": "whsec-merchant"})
        yield stand_ins


@pytest.fixture
def connects(monkeypatch) -> list[tuple[str, int]]:
    """Where urllib3 would open its sockets; refused here, so nothing leaves this machine."""
    attempts: list[tuple[str, int]] = []

    def refuse(address: tuple[str, int], *args: object, **kwargs: object) -> socket.socket:
        attempts.append(address)
        raise ConnectionRefusedError(111, "refused by the test")

    monkeypatch.setattr(urllib3.util.connection, "create_connection", refuse)
    return attempts


def send_webhook(url: str) -> dict[str, object]:
    return deliver_webhook(url, "whsec-merchant", {"order_id": "KK-1"}, "dlv_1")


@pytest.mark.parametrize(
    "answers",
    [
        ["10.0.0.7"],
        ["169.254.169.254"],
        ["::ffff:169.254.169.254"],  # IPv4-mapped IPv6
        ["64:ff9b::a9fe:a9fe"],  # NAT64 of 169.254.169.254
        ["2002:a00:1::"],  # 6to4 of 10.0.0.1
        ["fd12:3456::1"],  # unique local
        ["100.64.0.1"],  # CGNAT
        [PUBLIC, "127.0.0.1"],  # any one private answer is enough
        [PUBLIC, "fe80::1"],
    ],
)
def test_a_name_resolving_to_any_private_address_is_refused_at_send_time(
    settings, monkeypatch, connects, answers
):
    settings.ROBODASH_ALLOW_PRIVATE_TARGETS = False
    resolving(monkeypatch, answers)

    with pytest.raises(WriteBackFailed) as refused:
        send_webhook("https://hooks.example.pk/robodash")

    assert refused.value.stored == "address:private_address" and refused.value.retry is False
    assert connects == []


def test_the_connection_goes_to_the_checked_address_though_a_second_lookup_would_differ(
    settings, monkeypatch, connects
):
    settings.ROBODASH_ALLOW_PRIVATE_TARGETS = False
    asked = resolving(monkeypatch, [PUBLIC], ["169.254.169.254"])

    with pytest.raises(WriteBackFailed) as unreachable:
        send_webhook("https://hooks.example.pk/robodash")

    assert asked == ["hooks.example.pk"]  # resolved once
    assert connects == [(PUBLIC, 443)]  # to the checked address, not the rebound one
    assert unreachable.value.stored == "connect" and unreachable.value.retry is True


def test_a_rebinding_name_reaches_the_checked_stand_in_over_real_http(monkeypatch, stand_ins):
    # Private targets allowed (the tests' setting): the stand-in's 127.0.0.1 passes the check;
    # a second lookup would answer 127.0.0.2, where nothing listens.
    asked = resolving(monkeypatch, ["127.0.0.1"], ["127.0.0.2"])
    port = stand_ins.root_url.rsplit(":", 1)[1]

    assert send_webhook(f"http://hooks.example.pk:{port}/receiver/merchant") == {
        "code": "delivered",
        "status": 200,
    }
    assert asked == ["hooks.example.pk"]
    [delivery] = stand_ins.records()["receivers"]["merchant"]
    assert delivery["signed"] is True


def test_a_redirect_is_a_failure_with_its_status_and_is_never_followed(stand_ins):
    # The stand-ins on 127.0.0.1 are allowed here, so a followed redirect would land.
    elsewhere = stand_ins.receiver_url("merchant")
    stand_ins.fail_next("receiver", {"status": 302, "location": "http://169.254.169.254/"})
    with pytest.raises(WriteBackFailed) as to_metadata:
        send_webhook(elsewhere)
    stand_ins.fail_next("receiver", {"status": 307, "location": elsewhere})
    with pytest.raises(WriteBackFailed) as to_a_receiver:
        send_webhook(elsewhere)

    assert (to_metadata.value.stored, to_metadata.value.retry) == ("redirect:302", False)
    assert (to_a_receiver.value.stored, to_a_receiver.value.retry) == ("redirect:307", False)
    assert stand_ins.records()["receivers"]["merchant"] == []
    assert stand_ins.records()["requests"]["receiver"] == 2


def test_a_woocommerce_site_ending_in_a_query_still_gets_the_rest_path():
    # Stored before addresses were checked: "?x=" would have made the REST path a query.
    site = WooCommerceTarget("https://shop.example.pk/store?x=", "ck", "cs")

    assert site.orders_url("1001", "notes") == (
        "https://shop.example.pk/store/wp-json/wc/v3/orders/1001/notes"
    )
    assert site.orders_url("../../wp/v2/users") == (
        "https://shop.example.pk/store/wp-json/wc/v3/orders/..%2F..%2Fwp%2Fv2%2Fusers"
    )


@pytest.mark.parametrize(
    "url",
    [
        "https://user:pass@hooks.example.pk/",
        "https://hooks.example.pk/#frag",
        "ftp://hooks.example.pk/",
        "http://hooks.example.pk/",
        "https://localhost/",
        "https://metadata.google.internal/",
    ],
)
def test_the_send_time_check_refuses_what_the_save_time_check_refuses(
    settings, production, connects, url
):
    settings.ROBODASH_ALLOW_PRIVATE_TARGETS = False
    with pytest.raises(WriteBackFailed) as refused:
        send_webhook(url)
    assert refused.value.stored.startswith("address:") and connects == []


def self_signed(name: str) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return (
        certificate.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def test_https_to_the_pinned_address_still_sends_the_name_for_sni_and_checks_the_certificate(
    monkeypatch, tmp_path
):
    cert, key = self_signed("hooks.example.pk")
    (tmp_path / "cert.pem").write_bytes(cert)
    (tmp_path / "key.pem").write_bytes(key)
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    names: list[str | None] = []
    server_side.sni_callback = lambda _sock, name, _ctx: names.append(name)  # type: ignore[assignment,misc,return-value]
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    def serve_one_handshake() -> None:
        connection, _ = listener.accept()
        try:
            server_side.wrap_socket(connection, server_side=True).close()
        except (ssl.SSLError, OSError):
            pass  # the client refuses the self-signed certificate, as it should
        finally:
            connection.close()

    server = threading.Thread(target=serve_one_handshake, daemon=True)
    server.start()
    resolving(monkeypatch, ["127.0.0.1"])
    port = listener.getsockname()[1]

    with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        outgoing.send("POST", f"https://hooks.example.pk:{port}/", timeout=(5, 5))

    server.join(timeout=10)
    listener.close()
    assert names == ["hooks.example.pk"]


# --- The rule -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "public"),
    [
        (PUBLIC, True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("240.0.0.1", False),
        ("255.255.255.255", False),
        ("192.0.0.8", False),
        ("::1", False),
        ("::", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("ff02::1", False),
        ("::ffff:10.0.0.1", False),
        ("::ffff:93.184.215.14", True),
        ("64:ff9b::7f00:1", False),
        ("2002:7f00:1::", False),
        ("::7f00:1", False),  # IPv4-compatible (deprecated), in reserved ::/8
    ],
)
def test_which_addresses_are_public(address, public):
    assert outgoing.is_public_address(ipaddress.ip_address(address)) is public
