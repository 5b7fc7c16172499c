"""Requests to addresses a merchant typed (a Shopify Admin API endpoint, a WooCommerce site, a
webhook receiver): only to public https, as GitHub and Stripe do with theirs.

A merchant's address is checked twice. When it is saved (the Integrations forms, connect_shop):
`check_target` refuses anything but `https://`, a user:password@ or a #fragment, an IP literal or
a name in a private, loopback, link-local, reserved, multicast, shared (CGNAT) or unique-local
range, the names that only mean something inside a network (localhost, *.internal, …), and a
name whose addresses are not all public. When a worker uses it (`send`): the name is resolved
once, every address is checked, and the connection goes to exactly the address that was checked
(a requests adapter that connects to that IP while the Host header, SNI and the certificate check
keep the name): resolving again at connect time would let a name that answered a public address
to the check answer 169.254.169.254 to the connection (DNS rebinding). Redirects are never
followed: the caller gets the 3xx as it came.

Written here rather than taken from a library: `requests-hardened` (Saleor) pins the address the
same way (the adapter below follows it) but checks only the first address a name resolves to,
with its own rule and no way to give it ours (every address, the internal names, the development
setting below); `advocate` has had no release since 2020 and predates urllib3 2; `ssrfguard` is a
months-old 0.x of one author. What is left is small: a rule on `ipaddress` and one adapter.

`ROBODASH_ALLOW_PRIVATE_TARGETS` (off unless set; on in `make run` and the tests, whose shop
stand-ins listen on 127.0.0.1) lets plain http and private or internal addresses through; a
user:password@, a fragment or another scheme is refused either way.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import SplitResult, urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError
from urllib3.util.connection import allowed_gai_family

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# Names that only mean something inside a network (RFC 6761, RFC 8375, the clouds' metadata
# services): refused without asking DNS, whatever a resolver here would answer for them.
INTERNAL_NAMES = ("localhost", "metadata", "instance-data")
INTERNAL_SUFFIXES = (".localhost", ".internal", ".local", ".localdomain", ".home.arpa", ".arpa")
# Ranges `ipaddress` calls global that still reach inside: 6to4 relay anycast, and the rest of
# 192.0.0.0/24 (IETF protocol assignments; older Pythons treat only parts of it as private).
NOT_PUBLIC = (ipaddress.ip_network("192.88.99.0/24"), ipaddress.ip_network("192.0.0.0/24"))
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class AddressRefused(Exception):
    """An outgoing address robodash will not send to, with why as a code (the forms and the
    order page put it in words): malformed, scheme, credentials, fragment, query,
    internal_name, private_address, unresolvable."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def private_targets_allowed() -> bool:
    return bool(getattr(settings, "ROBODASH_ALLOW_PRIVATE_TARGETS", False))


# --- The rule -----------------------------------------------------------------------------------


def is_public_address(address: Address) -> bool:
    """Whether `address` is on the public internet, judging an IPv4 address carried inside an
    IPv6 one (::ffff:a.b.c.d, 6to4, NAT64) by the IPv4 address it reaches."""
    if isinstance(address, ipaddress.IPv6Address):
        carried = address.ipv4_mapped or address.sixtofour
        if carried is None and address in NAT64:
            carried = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if carried is not None:
            return is_public_address(carried)
        if address.is_site_local:
            return False
    return (
        address.is_global
        and not address.is_private
        and not address.is_multicast
        and not address.is_reserved
        and not address.is_loopback
        and not address.is_link_local
        and not address.is_unspecified
        and not any(address in network for network in NOT_PUBLIC)
    )


def is_internal_name(host: str) -> bool:
    name = host.rstrip(".").lower()
    return "." not in name or name in INTERNAL_NAMES or name.endswith(INTERNAL_SUFFIXES)


def lookup_addresses(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, in the resolver's order (the tests replace this: public
    DNS cannot be reached from where they run)."""
    answers = socket.getaddrinfo(host, port, family=allowed_gai_family(), type=socket.SOCK_STREAM)
    return [str(sockaddr[0]) for _family, _type, _proto, _name, sockaddr in answers]


def resolve_checked(host: str, port: int) -> list[Address]:
    """`host`'s addresses, every one checked; the caller connects to one of these."""
    literal = _ip_literal(host)
    if literal is not None:
        found = [literal]
    else:
        if is_internal_name(host) and not private_targets_allowed():
            raise AddressRefused("internal_name")
        try:
            found = [ipaddress.ip_address(a.split("%", 1)[0]) for a in lookup_addresses(host, port)]
        except (OSError, UnicodeError, ValueError):
            raise AddressRefused("unresolvable") from None
        if not found:
            raise AddressRefused("unresolvable")
    if not private_targets_allowed() and not all(is_public_address(a) for a in found):
        raise AddressRefused("private_address")
    return found


def check_url(url: str, *, query_allowed: bool = True) -> SplitResult:
    """The parts of `url` as requests will send it, if its shape is acceptable (no network)."""
    try:
        prepared = requests.Request("GET", url).prepare().url or ""
        parts = urlsplit(prepared)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except (requests.RequestException, ValueError, UnicodeError):
        raise AddressRefused("malformed") from None
    schemes = ("https", "http") if private_targets_allowed() else ("https",)
    if parts.scheme not in schemes:
        raise AddressRefused("scheme")
    if "@" in parts.netloc:
        raise AddressRefused("credentials")
    if not parts.hostname:
        raise AddressRefused("malformed")
    if "#" in url:
        raise AddressRefused("fragment")
    if parts.query and not query_allowed:
        raise AddressRefused("query")
    return parts


def check_target(url: str, *, query_allowed: bool = True) -> None:
    """Save-time check of a merchant's address: its shape, and where its name leads now."""
    parts = check_url(url, query_allowed=query_allowed)
    host = parts.hostname or ""
    if private_targets_allowed():
        return  # the stand-ins (and whatever else is being developed against) are reachable
    resolve_checked(host, parts.port or _default_port(parts.scheme))


# --- Sending ------------------------------------------------------------------------------------


class PinnedAddressAdapter(HTTPAdapter):
    """Connects to `address` for requests to `host`: the TCP connection goes to the IP that was
    checked, while the Host header, TLS SNI and the certificate's name check use `host`."""

    def __init__(self, host: str, address: Address) -> None:
        super().__init__(max_retries=0)
        self.host = host
        self.address = address

    def build_connection_pool_key_attributes(  # type: ignore[override]
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        # urllib3 takes more pool arguments (server_hostname…) than the stubs' TypedDict lists.
        base_params, base_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        host_params: dict[str, Any] = dict(base_params)
        pool_kwargs: dict[str, Any] = dict(base_kwargs)
        if host_params["host"] != self.host:
            # requests read the URL differently from the check: send nothing.
            raise AddressRefused("malformed")
        request.headers["Host"] = urlsplit(request.url or "").netloc
        host_params["host"] = str(self.address)
        if host_params["scheme"] == "https":
            pool_kwargs["server_hostname"] = self.host
            pool_kwargs["assert_hostname"] = self.host
        return host_params, pool_kwargs


def send(
    method: str, url: str, *, timeout: tuple[float, float], **kwargs: Any
) -> requests.Response:
    """One request to a merchant's address: checked, resolved once, connected to a checked
    address, redirects not followed. Raises AddressRefused, or what requests raises."""
    with requests.Session() as session:
        # Proxies from the environment would resolve the name themselves: connect directly.
        session.trust_env = False
        prepared = session.prepare_request(requests.Request(method, url, **kwargs))
        parts = check_url(prepared.url or "")
        host = parts.hostname or ""
        addresses = resolve_checked(host, parts.port or _default_port(parts.scheme))
        for address in addresses:
            adapter = PinnedAddressAdapter(host, address)
            session.mount(f"{parts.scheme}://", adapter)
            try:
                return session.send(prepared, timeout=timeout, allow_redirects=False)
            except requests.ConnectionError as error:
                # A refused connection sent nothing: the next checked address may answer (as a
                # name with an IPv6 and an IPv4 address does when only one is served).
                if address is addresses[-1] or not _refused(error):
                    raise
            finally:
                adapter.close()
    raise AssertionError("unreachable: resolve_checked returns at least one address")


def _refused(error: requests.ConnectionError) -> bool:
    reason = getattr(error.args[0] if error.args else None, "reason", None)
    return isinstance(reason, NewConnectionError)


def _ip_literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80
