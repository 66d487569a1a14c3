"""Consecutive failures of a connection's calls, graded at 50 / 70 / 90 / 100 % of a threshold
(as Hookdeck Outpost does): each level is told once, the last one is critical."""

from __future__ import annotations

from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from connectors.models import ApiCall
from monitoring.choices import Severity
from monitoring.models import Incident
from monitoring.rules import Rule, register
from monitoring.services.rollups import NOT_SENT_KINDS

LEVELS = (100, 90, 70, 50)


def leading_failures(connection, limit: int) -> int:
    """How many of the connection's latest calls failed in a row (at most ``limit``): one
    indexed read of ``limit`` rows."""
    recent = (
        ApiCall.objects.filter(connection=connection)
        .exclude(error_kind__in=NOT_SENT_KINDS)
        .order_by("-created_at", "-id")
        .values_list("status_code", flat=True)[:limit]
    )
    count = 0
    for status in recent:
        if status is not None and status < 400:
            break
        count += 1
    return count


@register
class ConsecutiveFailures(Rule):
    key = "consecutive_failures"
    title = _("Consecutive failures")
    defaults = {"threshold": 10}

    def evaluate(self, ctx):
        # only connections with a failure in the last hour, or an incident of this rule open:
        # the others cannot have a failure streak worth reading
        recent = ctx.call_totals(60)
        open_ids = set(
            Incident.objects.filter(rule=self.key, state__in=("open", "acknowledged"))
            .filter(~Q(connection=None))
            .values_list("connection_id", flat=True)
        )
        found = []
        for connection in ctx.connections:
            totals = recent.get(connection.pk)
            failing = totals and (totals.calls - totals.not_sent - totals.ok) > 0
            if not failing and connection.pk not in open_ids:
                continue
            params = ctx.params(self, connection_id=connection.pk)
            if params is None:
                continue
            threshold = max(1, int(params["threshold"]))
            streak = leading_failures(connection, threshold)
            level = next((lv for lv in LEVELS if streak * 100 >= lv * threshold), 0)
            if not level:
                continue
            found.append(
                self.connection_signal(
                    connection,
                    level=level,
                    severity=Severity.CRITICAL if level == 100 else Severity.WARNING,
                    summary=_(
                        "%(streak)s calls of %(connection)s failed in a row (%(level)s %% of "
                        "the threshold of %(threshold)s)"
                    )
                    % {
                        "streak": streak,
                        "connection": connection,
                        "level": level,
                        "threshold": threshold,
                    },
                    advice=_(
                        "Open the connection's latest calls: their status and error say "
                        "whether the key, the partner or the network is at fault. Test the "
                        "connection from its page once fixed."
                    ),
                    details={"streak": streak, "threshold": threshold},
                )
            )
        return found
