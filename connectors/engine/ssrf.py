"""The SSRF guard: which URLs and addresses the hub may call.

Checked twice: when a connection is saved (its base URL's host must resolve only to allowed
addresses) and at connect time, on the very address the socket connects to, so that a DNS answer
that changes between the two (DNS rebinding) does not get through. Numeric spellings of hosts
(``2130706433``, ``0x7f.1``, ``017700000001``) are resolved by the system resolver like any other
name, so they are judged by the address they mean.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.translation import gettext as _

__all__ = [
    "BlockedAddress",
    "address_block_reason",
    "check_base_url",
    "check_endpoint_url",
    "resolve_allowed",
]

# Never allowed, whatever the setting: nothing legitimate listens there.
ALWAYS_BLOCKED = "unspecified, multicast or reserved"


class BlockedAddress(Exception):
    """A host resolved to an address the hub must not call."""


def _unwrap(ip: ipaddress.IPv4Address | ipaddress.IPv6Address):
    """The IPv4 address hidden in an IPv4-mapped (::ffff:a.b.c.d) or 6to4/NAT64 IPv6 address."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in ipaddress.IPv6Network("64:ff9b::/96"):  # NAT64 (RFC 6052)
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if ip.sixtofour is not None:
            return ip.sixtofour
    return ip


def address_block_reason(address: str, *, allow_private: bool | None = None) -> str | None:
    """Why ``address`` may not be called, or None when it may."""
    if allow_private is None:
        allow_private = settings.HUB_ALLOW_PRIVATE_NETWORKS
    try:
        ip = _unwrap(ipaddress.ip_address(address.split("%", 1)[0]))
    except ValueError:
        return f"{address!r} is not an IP address"
    # loopback first: IPv6's ::1 sits in a reserved block (::/8), and it is only loopback
    if not ip.is_loopback and (ip.is_unspecified or ip.is_multicast or ip.is_reserved):
        return f"{ip} is {ALWAYS_BLOCKED}"
    if ip.is_global:
        return None
    if allow_private:
        return None
    if ip.is_loopback:
        label = "loopback"
    elif ip.is_link_local:
        label = "link-local"
    else:
        label = "private (not a public address)"
    return (
        f"{ip} is {label}; the hub only calls public addresses unless "
        "HUB_ALLOW_PRIVATE_NETWORKS is on"
    )


def resolve_allowed(host: str, port: int, *, allow_private: bool | None = None):
    """Resolve ``host`` and return its addrinfo entries, refusing if any address is blocked.

    Refusing when *any* address is blocked (not just skipping it) keeps a name that mixes public
    and internal addresses from being used to reach the internal one on a later connect.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    for info in infos:
        reason = address_block_reason(info[4][0], allow_private=allow_private)
        if reason:
            raise BlockedAddress(f"{host} resolves to a refused address: {reason}")
    return infos


def check_base_url(url: str, *, production: bool, allow_private: bool | None = None) -> None:
    """Validate a connection's base URL; raise ``ValueError`` with a message a person can act on."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(
            _("The base URL must start with https:// (or http:// outside production).")
        )
    if production and parts.scheme != "https":
        raise ValueError(_("A production connection must use https (the secrets travel on it)."))
    if parts.username or parts.password:
        raise ValueError(
            _("Put no user name or password in the URL: store them as a credential instead.")
        )
    if not parts.hostname:
        raise ValueError(_("The base URL has no host name."))
    if parts.query or parts.fragment:
        raise ValueError(_("The base URL takes no query string or fragment; give them per call."))
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ValueError(_("The base URL's port is not a number between 1 and 65535.")) from None
    try:
        resolve_allowed(parts.hostname, port, allow_private=allow_private)
    except BlockedAddress as exc:
        raise ValueError(str(exc)) from None
    except (socket.gaierror, UnicodeError) as exc:
        raise ValueError(
            _("The host %(hostname)s could not be resolved (%(exc)s).")
            % {"hostname": f"{parts.hostname!r}", "exc": exc}
        ) from None


def check_endpoint_url(url: str, *, require_https: bool, resolve: bool = True) -> None:
    """Validate a URL the hub calls as it is (an OAuth app's token, revocation or user-info
    endpoint): http(s), https when ``require_https``, no credentials in it, and — when
    ``resolve`` — a host that resolves only to allowed addresses. ``ValueError`` says why."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(_("Give a full http(s) URL, e.g. https://partner.example/oauth/token."))
    if require_https and parts.scheme != "https":
        raise ValueError(_("Use https: client secrets and tokens travel on this URL."))
    if parts.username or parts.password:
        raise ValueError(_("Put no user name or password in the URL."))
    if not resolve:
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        resolve_allowed(parts.hostname, port)
    except BlockedAddress as exc:
        raise ValueError(str(exc)) from None
    except (socket.gaierror, UnicodeError) as exc:
        raise ValueError(
            _("The host %(hostname)s could not be resolved (%(exc)s).")
            % {"hostname": f"{parts.hostname!r}", "exc": exc}
        ) from None
