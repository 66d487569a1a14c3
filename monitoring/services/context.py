"""What the rules of one monitoring pass share: the clock, the rules' parameters, the objects
watched, and sums of recent rollups (computed once per window, whatever the number of rules)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from functools import cached_property

from django.db.models import Sum

from connectors.choices import ConnectionStatus
from connectors.models import Connection
from monitoring.models import MINUTE, CallRollup, EventRollup, RuleSetting
from monitoring.services.rollups import CALL_COUNTERS, EVENT_COUNTERS
from webhooks.models import WebhookEndpoint

__all__ = ["Context"]

WATCHED = (ConnectionStatus.ACTIVE, ConnectionStatus.FAILING, ConnectionStatus.REAUTH_REQUIRED)


class Totals(dict):
    """Summed counters of one connection or endpoint; a missing counter is 0."""

    def __getattr__(self, name):
        return self.get(name, 0)


class Context:
    def __init__(self, now: datetime):
        self.now = now
        self._calls: dict[int, dict[int, Totals]] = {}
        self._events: dict[int, dict[int, Totals]] = {}

    # -- parameters ------------------------------------------------------------------------
    @cached_property
    def _settings(self) -> dict[tuple, RuleSetting]:
        return {(s.rule, s.connection_id, s.endpoint_id): s for s in RuleSetting.objects.all()}

    def params(self, rule, *, connection_id=None, endpoint_id=None) -> dict | None:
        """The rule's parameters for this target (defaults, then the hub's setting, then the
        target's); ``None`` when the rule is switched off there."""
        merged = dict(rule.defaults)
        keys = [(rule.key, None, None)]
        if connection_id is not None:
            keys.append((rule.key, connection_id, None))
        if endpoint_id is not None:
            keys.append((rule.key, None, endpoint_id))
        for key in keys:
            setting = self._settings.get(key)
            if setting is None:
                continue
            if not setting.enabled:
                return None
            merged.update({k: v for k, v in setting.params.items() if k in rule.defaults})
        return merged

    # -- what is watched -------------------------------------------------------------------
    @cached_property
    def connections(self) -> list[Connection]:
        """Connections that should be working (not paused or disabled)."""
        return list(Connection.objects.filter(status__in=WATCHED).order_by("pk"))

    @cached_property
    def endpoints(self) -> list[WebhookEndpoint]:
        return list(
            WebhookEndpoint.objects.filter(enabled=True).select_related("connection").order_by("pk")
        )

    # -- recent rollups --------------------------------------------------------------------
    def call_totals(self, minutes: int) -> dict[int, Totals]:
        """Per connection, the calls of the last ``minutes`` (the current minute included)."""
        if minutes not in self._calls:
            self._calls[minutes] = self._sum(CallRollup, "connection_id", CALL_COUNTERS, minutes)
        return self._calls[minutes]

    def event_totals(self, minutes: int) -> dict[int, Totals]:
        if minutes not in self._events:
            self._events[minutes] = self._sum(EventRollup, "endpoint_id", EVENT_COUNTERS, minutes)
        return self._events[minutes]

    def _sum(self, model, owner: str, counters, minutes: int) -> dict[int, Totals]:
        since = self.now.replace(second=0, microsecond=0) - timedelta(minutes=minutes - 1)
        rows = (
            model.objects.filter(resolution=MINUTE, start__gte=since)
            .values(owner)
            .annotate(**{name: Sum(name) for name in counters})
            .order_by()
        )
        out: dict[int, Totals] = defaultdict(Totals)
        for row in rows:
            out[row.pop(owner)] = Totals(row)
        return out
