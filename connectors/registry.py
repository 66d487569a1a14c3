"""One helper for every table of plugins (verification schemes, auth methods, transforms,
pagination strategies, sync sources and targets, webhook handlers), so they all behave alike:

* registering a key twice is an error (two plugins silently replacing each other is a bug);
* an unknown key raises :class:`UnknownKey`, whose message lists the known keys.

A ``Registry`` is a ``dict`` (``key in registry``, ``sorted(registry)``, ``.items()``), written
only through :meth:`Registry.add`.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext

__all__ = ["Registry", "UnknownKey"]


class UnknownKey(KeyError):
    """An unknown key; the message names the known ones. A ``KeyError`` (and so a
    ``LookupError``), with a readable message."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class Registry(dict):
    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def add(self, key, value) -> Any:
        """Register ``value`` under ``key``; a duplicate or empty key is a ``ValueError``."""
        if key in (None, ""):
            raise ValueError(f"a {self.kind} needs a key")
        if key in self:
            raise ValueError(f"{self.kind} {key!r} is already registered")
        self[key] = value
        return value

    def lookup(self, key) -> Any:
        try:
            return self[key]
        except KeyError:
            known = ", ".join(sorted(str(k) for k in self)) or gettext("none")
            raise UnknownKey(
                gettext('unknown %(kind)s "%(key)s" (known: %(known)s)')
                % {"kind": self.kind, "key": key, "known": known}
            ) from None
