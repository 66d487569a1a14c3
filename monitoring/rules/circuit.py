"""The circuit breaker of a connection is open: calls are not even tried until it probes."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from connectors.engine.circuit import open_windows
from monitoring.choices import Severity
from monitoring.rules import Rule, fmt_time, register


@register
class CircuitOpen(Rule):
    key = "circuit"
    title = _("Circuit opened (and closed)")
    defaults = {}

    def evaluate(self, ctx):
        found = []
        windows = open_windows(ctx.connections)
        for connection in ctx.connections:
            if ctx.params(self, connection_id=connection.pk) is None:
                continue
            window = windows.get(connection.pk)
            if window is None:
                continue
            opened, until = window
            found.append(
                self.connection_signal(
                    connection,
                    severity=Severity.CRITICAL,
                    summary=_(
                        "The circuit of %(connection)s is open since %(opened)s: no call is "
                        "made until a probe succeeds (next probe after %(probe)s)"
                    )
                    % {
                        "connection": connection,
                        "opened": fmt_time(opened),
                        "probe": fmt_time(until),
                    },
                    advice=_(
                        "The partner failed repeatedly. Calls resume by themselves after a "
                        "successful probe; events wait and are retried. To try now, use Test "
                        "connection, then Reset circuit on the connection's page."
                    ),
                    details={"opened_at": opened.isoformat(), "probe_after": until.isoformat()},
                )
            )
        return found
