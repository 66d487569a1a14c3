"""The alert rules: one small class per file, registered by key.

A rule looks at what happened (rollups, recent rows, the breaker's state, the calendar) and
returns :class:`Signal` objects, one per problem it sees *now*. The monitoring pass turns
signals into incidents: a new signal opens one, a signal that stays keeps it open, a signal that
stays away long enough resolves it. A rule never sends anything itself.

Parameters: each rule declares ``defaults``; a :class:`~monitoring.models.RuleSetting` changes
them for the hub, a connection or an endpoint (the most specific wins), or switches the rule off.
"""

from __future__ import annotations

import abc
import importlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from django.utils.translation import gettext_lazy as _

from connectors.registry import Registry
from monitoring.choices import Severity, TargetType

__all__ = ["RULES", "Rule", "Signal", "load", "register"]

RULES = Registry("monitoring rule")

MODULES = [
    "error_rate",
    "consecutive_failures",
    "circuit",
    "events_waiting",
    "backlog",
    "quota",
    "expiry",
    "sync_freshness",
    "silence",
    "signature_failures",
    "hub",
]


@dataclass
class Signal:
    """One problem a rule sees now. ``error_class`` separates problems of one target that need
    different fixes (a 401 is not a 503)."""

    rule: str
    target_type: str
    target_id: int | None
    target_label: str
    summary: str
    advice: str = ""
    severity: str = Severity.WARNING
    level: int = 0
    error_class: str = ""
    connection_id: int | None = None
    endpoint_id: int | None = None
    link: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.rule}|{self.target_type}:{self.target_id or ''}|{self.error_class}"[:255]


class Rule(abc.ABC):
    """Subclass, set ``key``, ``title``, ``defaults``, and write :meth:`evaluate`."""

    key: ClassVar[str]
    title: ClassVar[str]
    defaults: ClassVar[dict[str, Any]] = {}

    @abc.abstractmethod
    def evaluate(self, ctx) -> list[Signal]:
        """The signals this rule sees now (one per target in trouble)."""

    def signal(self, **fields) -> Signal:
        return Signal(rule=self.key, **fields)

    def connection_signal(self, connection, **fields) -> Signal:
        """A signal about a connection (routing, owner and affected calls follow it)."""
        return self.signal(
            target_type=TargetType.CONNECTION,
            target_id=connection.pk,
            target_label=str(connection),
            connection_id=connection.pk,
            **fields,
        )

    def endpoint_signal(self, endpoint, **fields) -> Signal:
        """A signal about a webhook endpoint (and so its connection)."""
        return self.signal(
            target_type=TargetType.ENDPOINT,
            target_id=endpoint.pk,
            target_label=f"endpoint {endpoint.slug}",
            connection_id=endpoint.connection_id,
            endpoint_id=endpoint.pk,
            **fields,
        )

    def hub_signal(self, **fields) -> Signal:
        """A signal about the hub itself."""
        return self.signal(
            target_type=TargetType.HUB, target_id=None, target_label="the hub", **fields
        )


def register(cls):
    """Class decorator: add a rule to :data:`RULES` under its ``key``."""
    RULES.add(cls.key, cls())
    return cls


def load() -> None:
    """Import every rule module once (the app's ``ready``)."""
    for name in MODULES:
        importlib.import_module(f"monitoring.rules.{name}")


def fmt_time(value: datetime) -> str:
    """A time for a message: the hub's zone, to the minute."""
    from django.utils import timezone

    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M %Z")


def fmt_duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``6 h``, ``3 d``: how long, in words a person reads at once."""
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 2 * 3600:
        return f"{seconds // 60} min"
    if seconds < 3 * 86400:
        return f"{seconds // 3600} h"
    # Translators: a number of days, abbreviated as "3 d" (French: "3 j")
    return _("%(n)s d") % {"n": seconds // 86400}
