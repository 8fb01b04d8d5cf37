"""Where a webhook may be sent: public HTTPS addresses only, decided without sending anything.

A webhook URL is checked at submit (a refusal is `400`) and again before every delivery (DNS
can change between the two). It must be `https`, carry no credentials, and every address its
host resolves to must be public: no loopback, private, link-local (the cloud metadata server
lives at 169.254.169.254), shared, reserved, multicast or unspecified address, and not the
metadata server by name. `allow_loopback` (the local stack and tests only, never production)
also lets it be `http` to a loopback host, so a receiver on 127.0.0.1 can be tried.

The deliverer connects to the addresses checked here (`WebhookTarget.addresses`), not to a
second lookup of the name, so a name that resolves differently the next moment cannot send a
delivery somewhere the check did not see.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import SplitResult, urlsplit

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# host, port -> the addresses it resolves to (as text). Raises `OSError` if it does not resolve.
Resolver = Callable[[str, int], Sequence[str]]

LOOPBACK_NAMES: Final = frozenset({"localhost", "localhost.localdomain"})
METADATA_NAMES: Final = frozenset(
    {"metadata", "metadata.google.internal", "metadata.goog", "metadata.google.internal."}
)
METADATA_ADDRESSES: Final = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)


class UnsafeWebhookUrl(ValueError):
    """The URL may not be sent to; the message says why (without the URL's query)."""


class WebhookHostNotFound(UnsafeWebhookUrl):
    """The URL's host did not resolve: refused at submit, retried at delivery (DNS may be
    passing trouble)."""


@dataclass(frozen=True)
class WebhookTarget:
    """A checked URL, and the addresses to connect to."""

    url: str
    scheme: str
    host: str  # as it goes in `Host` and in TLS's server name
    port: int
    target: str  # path and query: what the request line carries
    addresses: tuple[IpAddress, ...]


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to, through the system's resolver."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def loopback_only_resolver(host: str, port: int) -> list[str]:
    """Resolves loopback names only, and never asks DNS: what runs against the emulators (the
    local stack and every test) uses it, so no webhook check there sends a query off the
    machine. Any other name "does not resolve"."""
    if host.rstrip(".") in LOOPBACK_NAMES:
        return ["127.0.0.1", "::1"]
    raise OSError("only loopback names resolve against the local emulators")


def check_target(url: str, *, resolver: Resolver, allow_loopback: bool) -> WebhookTarget:
    """`url` checked and resolved; `UnsafeWebhookUrl` (or `WebhookHostNotFound`) if refused."""
    parts = _split(url)
    host = _host_of(parts)
    port = _port_of(parts)
    literal = _ip_literal(host)
    if literal is not None:
        addresses: tuple[IpAddress, ...] = (literal,)
    else:
        if host.rstrip(".") in METADATA_NAMES or host in METADATA_NAMES:
            raise UnsafeWebhookUrl("must not name the metadata server")
        addresses = _resolved(host, port, resolver)
    for address in addresses:
        refusal = address_refusal(address, allow_loopback=allow_loopback)
        if refusal is not None:
            raise UnsafeWebhookUrl(f"its host resolves to {refusal} ({address})")
    loopback_only = all(_unmapped(address).is_loopback for address in addresses)
    if parts.scheme != "https" and not (allow_loopback and loopback_only):
        raise UnsafeWebhookUrl("must be an https URL")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return WebhookTarget(
        url=url, scheme=parts.scheme, host=host, port=port, target=target, addresses=addresses
    )


def address_refusal(address: IpAddress, *, allow_loopback: bool) -> str | None:
    """Why a delivery may not go to `address` (a phrase such as "a private address"), or None."""
    ip = _unmapped(address)
    if ip in METADATA_ADDRESSES:
        return "the metadata server"
    if ip.is_loopback:
        return None if allow_loopback else "a loopback address"
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_private:
        return "a private address"
    if not ip.is_global:
        return "an address that is not public"
    return None


def _split(url: str) -> SplitResult:
    if not url.isascii() or any(ch.isspace() or not ch.isprintable() for ch in url):
        raise UnsafeWebhookUrl("must be an ASCII URL without spaces (encode it)")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a port out of range
    except ValueError as exc:
        raise UnsafeWebhookUrl(f"is not a URL: {exc}") from None
    if parts.scheme not in ("https", "http"):
        raise UnsafeWebhookUrl("must be an https URL")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UnsafeWebhookUrl("must not carry credentials (user:password@)")
    return parts


def _host_of(parts: SplitResult) -> str:
    host = (parts.hostname or "").lower()
    if not host:
        raise UnsafeWebhookUrl("has no host")
    return host


def _port_of(parts: SplitResult) -> int:
    port = parts.port
    if port == 0:
        raise UnsafeWebhookUrl("port 0 is not a port")
    return port if port is not None else (443 if parts.scheme == "https" else 80)


def _ip_literal(host: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _resolved(host: str, port: int, resolver: Resolver) -> tuple[IpAddress, ...]:
    try:
        found = resolver(host, port)
    except (OSError, UnicodeError) as exc:
        raise WebhookHostNotFound(f"its host {host} does not resolve ({exc})") from None
    addresses: list[IpAddress] = []
    for text in found:
        try:
            addresses.append(ipaddress.ip_address(text.split("%", 1)[0]))
        except ValueError:
            raise UnsafeWebhookUrl(f"its host resolves to something odd ({text!r})") from None
    if not addresses:
        raise WebhookHostNotFound(f"its host {host} does not resolve")
    return tuple(addresses)


def _unmapped(address: IpAddress) -> IpAddress:
    """An IPv4 address written as IPv6 (`::ffff:10.0.0.1`, NAT64's `64:ff9b::`) as itself."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in ipaddress.ip_network("64:ff9b::/96"):
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if address.sixtofour is not None:
            return address.sixtofour
    return address
