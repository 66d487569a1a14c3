"""Error rate over a window, with a minimum count: calls per connection, processing per
endpoint (default: at least 20 % of at least 10 in 15 min)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from monitoring.choices import Severity
from monitoring.rules import Rule, register

ADVICE = {
    "5xx": _(
        "The partner is failing on its side: check its status page. Calls are retried and "
        "the circuit breaker spares it; nothing to replay by hand once it recovers."
    ),
    "network": _(
        "The hub cannot reach the partner (timeouts, refused connections, DNS): check "
        "the base URL, the partner's status and the network between them."
    ),
    "429": _(
        "The partner's quota is exhausted: lower the connection's rate limit, spread the "
        "syncs, or ask the partner for a larger quota."
    ),
    "4xx": _(
        "The partner refuses the requests: open the failed calls. 401/403: replace the "
        "credential or grant the scope; 400/422: fix the mapping, then retry the events."
    ),
}
CLASSES = (
    ("5xx", "server_errors"),
    ("network", "network_errors"),
    ("429", "rate_limited"),
    ("4xx", "client_errors"),
)


@register
class ErrorRate(Rule):
    key = "error_rate"
    title = _("Error rate")
    defaults = {"percent": 20, "min_count": 10, "window_minutes": 15, "critical_percent": 50}

    def evaluate(self, ctx):
        found = []
        for connection in ctx.connections:
            params = ctx.params(self, connection_id=connection.pk)
            if params is None:
                continue
            totals = ctx.call_totals(params["window_minutes"]).get(connection.pk)
            if not totals:
                continue
            sent = totals.calls - totals.not_sent
            failed = sum(totals.get(field, 0) for _class, field in CLASSES)
            if sent < params["min_count"] or failed * 100 < params["percent"] * sent:
                continue
            worst = max(CLASSES, key=lambda pair: totals.get(pair[1], 0))[0]
            found.append(
                self.connection_signal(
                    connection,
                    summary=_(
                        "%(failed)s of the last %(sent)s calls of %(connection)s failed (mostly "
                        "%(worst)s) in %(minutes)s min"
                    )
                    % {
                        "failed": failed,
                        "sent": sent,
                        "connection": connection,
                        "worst": worst,
                        "minutes": params["window_minutes"],
                    },
                    advice=ADVICE[worst],
                    severity=Severity.CRITICAL
                    if failed * 100 >= params["critical_percent"] * sent
                    else Severity.WARNING,
                    details={"failed": failed, "calls": sent, "mostly": worst},
                )
            )
        for endpoint in ctx.endpoints:
            params = ctx.params(self, endpoint_id=endpoint.pk)
            if params is None:
                continue
            totals = ctx.event_totals(params["window_minutes"]).get(endpoint.pk)
            if not totals:
                continue
            attempts = totals.processed + totals.unhandled + totals.retried + totals.failed
            failed = totals.retried + totals.failed
            if attempts < params["min_count"] or failed * 100 < params["percent"] * attempts:
                continue
            found.append(
                self.endpoint_signal(
                    endpoint,
                    error_class="processing",
                    summary=_(
                        "%(failed)s of the last %(attempts)s processing attempts on endpoint "
                        "%(endpoint)s failed in %(minutes)s min"
                    )
                    % {
                        "failed": failed,
                        "attempts": attempts,
                        "endpoint": endpoint.slug,
                        "minutes": params["window_minutes"],
                    },
                    advice=_(
                        "Open the failing events: their attempts and API calls say why. Fix "
                        "the cause (credential, mapping, partner), then retry them from this "
                        "incident."
                    ),
                    severity=Severity.CRITICAL
                    if failed * 100 >= params["critical_percent"] * attempts
                    else Severity.WARNING,
                    details={"failed": failed, "attempts": attempts},
                )
            )
        return found
