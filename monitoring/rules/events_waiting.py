"""Events waiting for a person: failed (a permanent error) or dead (attempts exhausted)."""

from __future__ import annotations

from django.db.models import Count
from django.utils.translation import gettext_lazy as _

from monitoring.choices import Severity
from monitoring.rules import Rule, register
from webhooks.choices import EventStatus
from webhooks.models import WebhookEvent

# The condition of the partial index event_waiting_endpoint, written as the index has it: SQLite
# uses a partial index only when the query's condition is the same literal text (a bound
# parameter cannot prove it), and then counts from that small index alone, not the table.
WAITING_CONDITION = f"\"status\" IN ('{EventStatus.FAILED}', '{EventStatus.DEAD}')"


def waiting_counts():
    """Events waiting for a person, per endpoint and status, from the partial index."""
    return (
        WebhookEvent.objects.extra(where=[WAITING_CONDITION])  # noqa: S610 (constants only)
        .values("endpoint_id", "status")
        .annotate(n=Count("*"))
        .order_by()
    )


@register
class EventsWaiting(Rule):
    key = "events_waiting"
    title = _("Events waiting for a person")
    defaults = {"min_count": 1, "critical_count": 100}

    def evaluate(self, ctx):
        counts: dict[int, dict] = {}
        for row in waiting_counts():
            entry = counts.setdefault(row["endpoint_id"], {"failed": 0, "dead": 0})
            entry[row["status"]] = row["n"]
        found = []
        for endpoint in ctx.endpoints:
            row = counts.get(endpoint.pk)
            params = ctx.params(self, endpoint_id=endpoint.pk)
            if row is None or params is None:
                continue
            waiting = row["failed"] + row["dead"]
            if waiting < params["min_count"]:
                continue
            found.append(
                self.endpoint_signal(
                    endpoint,
                    severity=Severity.CRITICAL
                    if waiting >= params["critical_count"]
                    else Severity.WARNING,
                    summary=_(
                        "%(waiting)s event(s) of endpoint %(endpoint)s wait for a person "
                        "(%(failed)s failed, %(dead)s dead)"
                    )
                    % {
                        "waiting": waiting,
                        "endpoint": endpoint.slug,
                        "failed": row["failed"],
                        "dead": row["dead"],
                    },
                    advice=_(
                        "Open them from this incident: each says why it failed. Fix the "
                        "cause, then Retry all (the upserts do not create duplicates), or "
                        "resolve them by hand with a note."
                    ),
                    details={"failed": row["failed"], "dead": row["dead"]},
                )
            )
        return found
