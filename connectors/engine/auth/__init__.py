"""Auth methods: a registry of small classes, one file each.

An auth method adds what the partner needs to an outgoing request (a header, a query
parameter) from the connection's current credential. To add one: write a subclass of
:class:`AuthMethod` in its own module here, decorate it with :func:`register`, import the module
below, and add its key to ``connectors.choices.AuthMethod``.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

from connectors.engine.errors import AuthError
from connectors.registry import Registry, UnknownKey

__all__ = ["AuthMethod", "OutboundRequest", "get_auth_method", "register", "registry"]


@dataclass
class OutboundRequest:
    """The parts of a request an auth method may change."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    params: list[tuple[str, str]] = field(default_factory=list)


class AuthMethod(abc.ABC):
    """Base of the auth methods. ``key`` matches ``Connection.auth_method``."""

    key: str = ""
    #: credential kind the method reads (None: needs no secret)
    credential_kind: str | None = None
    #: true for methods that expose the secret more than a header does
    weak: bool = False

    def secret_query_params(self, connection) -> set[str]:
        """Query parameters whose values must never be logged."""
        return set()

    @abc.abstractmethod
    def apply(self, request: OutboundRequest, connection, secret: str | None) -> None:
        """Add the credential to ``request`` (headers or query parameters)."""

    def on_unauthorized(self, connection, sent: OutboundRequest | None = None) -> bool:
        """Called after a 401 with a credential believed valid (``sent``: the request that got
        it). Return True when the credential was renewed and the call is worth one more try
        (OAuth refresh). Default: no."""
        return False

    def missing_secret(self, connection) -> AuthError:
        return AuthError(
            f"Connection {connection.slug!r} has no usable credential of kind "
            f"{self.credential_kind!r}.",
            hint="Add one in the console (Connections → Credentials), or check that it has not "
            "expired or been revoked.",
        )


registry: Registry = Registry("auth method")


def register(cls: type[AuthMethod]) -> type[AuthMethod]:
    """Class decorator: add an auth method to the registry under its ``key``."""
    registry.add(cls.key, cls())
    return cls


def get_auth_method(key: str) -> AuthMethod:
    try:
        return registry.lookup(key)
    except UnknownKey as exc:
        raise AuthError(
            f"{exc}.", hint="Pick one of the known auth methods on the connection."
        ) from None


# Import the methods so they register themselves.
from connectors.engine.auth import (  # noqa: E402, F401
    api_key_header,
    api_key_query,
    basic,
    bearer,
    none,
    oauth2,
)
