"""Verification schemes: a registry of small classes, one file each.

A scheme checks a delivery's signature (and timestamp, when the partner signs one) over the raw
body, against every usable signing secret of the endpoint's connection, in constant time. It
raises :class:`SignatureRejected` with a short reason a partner's developer can act on, and
never lets a malformed header escape as anything else. It also says where the partner puts the
event id and type. To add one: a module here with a subclass decorated by :func:`register`,
imported below, and its key added to ``webhooks.models.endpoint.SCHEME_CHOICES``.
"""

from __future__ import annotations

import abc
import hmac
import time
from dataclasses import dataclass

from connectors.registry import Registry

__all__ = [
    "Delivery",
    "Scheme",
    "SignatureRejected",
    "Verified",
    "get_scheme",
    "register",
    "registry",
]


class SignatureRejected(Exception):
    """The delivery is refused; ``reason`` is short and safe to return to the sender."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class Delivery:
    """What a scheme sees of a request: headers (case-insensitive mapping) and the raw body."""

    headers: object
    body: bytes
    now: float

    def header(self, name: str) -> str:
        value = self.headers.get(name)
        return value.strip() if isinstance(value, str) else ""


@dataclass
class Verified:
    secret: object  # the (secret, fingerprint) pair that matched
    fingerprint: str


class Scheme(abc.ABC):
    """Base of the schemes. ``key`` matches ``WebhookEndpoint.scheme``."""

    key = ""
    #: default locations of the event id and type ("header:Name" or "json:path")
    event_id_source = "json:id"
    event_type_source = "json:type"
    #: headers whose values are signatures (kept in the stored headers: they are not secrets)
    signature_headers: tuple[str, ...] = ()

    def handshake(self, payload) -> dict | None:
        """A verified delivery that is the partner checking the URL, not an event: the JSON
        answer it expects (nothing is stored), or None for a normal event."""
        return None

    def event_id_from(self, headers) -> str:
        """An id found in headers that ``event_id_source`` cannot express ('' if none)."""
        return ""

    @abc.abstractmethod
    def verify(self, delivery: Delivery, secrets, *, tolerance: int, options: dict) -> Verified:
        """Return which secret verified the delivery, or raise ``SignatureRejected``.
        ``secrets`` is a list of ``(plaintext, fingerprint)`` pairs."""

    # -- helpers for the schemes -----------------------------------------------------------
    @staticmethod
    def check_timestamp(raw: str, now: float, tolerance: int) -> int:
        """A signed Unix timestamp: ASCII digits only (``int()`` would also take ``1_796``,
        ``+5`` or Arabic-Indic digits), within ``tolerance`` seconds of now. A value of more
        than twelve digits (past the year 33,000) is outside any tolerance: refused as such,
        before it could overflow a float comparison."""
        if not isinstance(raw, str) or not raw.isascii() or not raw.isdigit():
            raise SignatureRejected("malformed timestamp")
        if len(raw.lstrip("0")) > MAX_TIMESTAMP_DIGITS:
            raise SignatureRejected("timestamp outside tolerance")
        stamp = int(raw)
        if abs(now - stamp) > tolerance:
            raise SignatureRejected("timestamp outside tolerance")
        return stamp

    @staticmethod
    def first_match(candidates, secrets, compute) -> Verified:
        """Compare every candidate signature with ``compute(secret)`` for every secret, in
        constant time; the first secret that matches wins."""
        for secret, fingerprint in secrets:
            expected = compute(secret)
            for candidate in candidates:
                if hmac.compare_digest(expected, candidate):
                    return Verified((secret, fingerprint), fingerprint)
        raise SignatureRejected("signature mismatch")


MAX_TIMESTAMP_DIGITS = 12

registry: Registry = Registry("verification scheme")


def register(cls: type[Scheme]) -> type[Scheme]:
    registry.add(cls.key, cls())
    return cls


def get_scheme(key: str) -> Scheme:
    return registry.lookup(key)


def now() -> float:
    return time.time()


from webhooks.schemes import (  # noqa: E402, F401, I001
    github,
    generic_hmac,
    shopify,
    slack,
    standard,
    stripe,
)
