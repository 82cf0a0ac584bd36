"""Where a webhook may point (PRODUCT.md §5): https only, never a private, loopback or
link-local address, checked when the webhook is registered and again before every delivery.

A URL's host is resolved once per check and the delivery connects to the very address that
passed (see ``transport.py``), so a name that changes its answer between the check and the
connection (DNS rebinding) cannot steer a delivery inside the network.

``allow_private`` (``ALLOW_PRIVATE_WEBHOOK_URLS``, refused in production) admits http and
private addresses for tests and local development.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from debtgraph.domain.core.errors import DomainValidationError, FieldError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Resolution may not hold a request or a delivery for long.
RESOLVE_TIMEOUT_SECONDS = 5.0
MAX_URL_LENGTH = 2000

NOT_HTTPS = "url must use https."
NOT_ABSOLUTE = "url must be an absolute https URL."
NOT_RESOLVED = "url's host does not resolve."
PRIVATE = "url must not point to a private, loopback, link-local or reserved address."


class TargetRefused(DomainValidationError):
    """The URL may not receive webhooks; ``code`` names why (field ``url``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__([FieldError("url", code, message)])
        self.reason = code


@dataclass(frozen=True, slots=True)
class Target:
    """A URL that passed the guard, with the addresses it resolved to (connect to these)."""

    url: str
    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[IPAddress, ...]


# NAT64 prefixes: the well-known one embeds an IPv4 address in its last 32 bits; the local-use
# one (RFC 8215) can map to anything a site chooses, so it is refused whole.
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")


def _forbidden(address: IPAddress) -> bool:
    """Private, loopback, link-local, multicast, reserved or unspecified: not the internet.

    An IPv6 address that carries an IPv4 one (mapped, compatible, 6to4, Teredo, NAT64) is judged
    by the IPv4 address it reaches, so ``::ffff:127.0.0.1`` or ``2002:7f00:1::`` is loopback.
    """
    if isinstance(address, ipaddress.IPv6Address):
        if address in _NAT64_LOCAL_USE or address.is_site_local:
            return True
        embedded: list[ipaddress.IPv4Address] = []
        if address.ipv4_mapped is not None:
            embedded.append(address.ipv4_mapped)
        if int(address) < 2**32:  # IPv4-compatible (::a.b.c.d), deprecated but routable
            embedded.append(ipaddress.IPv4Address(int(address)))
        if address.sixtofour is not None:
            embedded.append(address.sixtofour)
        if address.teredo is not None:
            embedded.extend(address.teredo)
        if address in _NAT64_WELL_KNOWN:
            embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if any(_forbidden(inner) for inner in embedded):
            return True
    return (
        not address.is_global
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def parse(url: str, *, allow_private: bool) -> tuple[str, str, int, str]:
    """Scheme, host, port and path-with-query of a webhook URL, or TargetRefused."""
    text = url.strip()
    if not text or len(text) > MAX_URL_LENGTH or any(ch.isspace() for ch in text):
        raise TargetRefused("invalid_url", NOT_ABSOLUTE)
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise TargetRefused("invalid_url", NOT_ABSOLUTE) from None
    scheme = parts.scheme.lower()
    if scheme not in {"https", "http"} or not parts.hostname:
        raise TargetRefused("invalid_url", NOT_ABSOLUTE)
    if scheme != "https" and not allow_private:
        raise TargetRefused("url_not_https", NOT_HTTPS)
    if parts.username is not None or parts.password is not None:
        # Credentials in a URL end up in logs; receivers authenticate us by the signature.
        raise TargetRefused("invalid_url", "url must not contain credentials.")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    default_port = 443 if scheme == "https" else 80
    return scheme, _ascii_host(parts.hostname), port or default_port, path


def _ascii_host(hostname: str) -> str:
    """The host as it goes on the wire: IDNA (punycode) for a non-ASCII name, else refused.

    A Host header and TLS SNI take ASCII only; a name kept in Unicode would resolve at
    registration (getaddrinfo converts it) and then fail every send.
    """
    host = hostname.lower()
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        raise TargetRefused(
            "invalid_url", "url host is not a valid internationalised domain name."
        ) from None


async def _resolve(host: str, port: int) -> tuple[IPAddress, ...]:
    try:
        return (ipaddress.ip_address(host),)
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError, UnicodeError):
        raise TargetRefused("url_unresolvable", NOT_RESOLVED) from None
    found: list[IPAddress] = []
    for family, *_rest, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        # Scope ids ("fe80::1%eth0") are link-local anyway; drop them before parsing.
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    if not found:
        raise TargetRefused("url_unresolvable", NOT_RESOLVED)
    return tuple(found)


async def check(url: str, *, allow_private: bool) -> Target:
    """Resolve the URL's host and refuse it unless every address is a public one."""
    scheme, host, port, path = parse(url, allow_private=allow_private)
    stored = _stored_form(url, host)
    if len(stored) > MAX_URL_LENGTH:
        # Its host in punycode is longer than as sent: held to the column as it is kept.
        raise TargetRefused("too_long", f"url must be at most {MAX_URL_LENGTH} characters.")
    addresses = await _resolve(host, port)
    # Every address, not only the first: a client would happily connect to any of them.
    if not allow_private and any(_forbidden(a) for a in addresses):
        raise TargetRefused("url_private", PRIVATE)
    return Target(stored, scheme, host, port, path, addresses)


def _stored_form(url: str, host: str) -> str:
    """The URL as it is kept: unchanged, except a non-ASCII host in its IDNA (punycode) form."""
    text = url.strip()
    parts = urlsplit(text)
    if parts.hostname is None or parts.hostname.isascii():
        return text
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))
