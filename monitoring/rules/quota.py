"""The partner's quota: the share used, read from its rate-limit headers (warnings at 75 and
90 %), and bursts of 429."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Max
from django.utils.translation import gettext_lazy as _

from connectors.models import ApiCall
from monitoring.choices import Severity
from monitoring.rules import Rule, fmt_time, register


def latest_quotas(now, *, hours: int = 1) -> dict[int, tuple]:
    """Per connection, the latest quota the partner reported in the last ``hours``, while its
    window has not reset: ``{pk: (remaining, limit, reset_at, at)}``. Two queries on the
    partial index of the calls that carried quota headers, whatever the number of connections."""
    since = now - timedelta(hours=hours)
    reported = ApiCall.objects.filter(quota_remaining__isnull=False, created_at__gte=since)
    latest = dict(
        reported.values("connection_id")
        .annotate(at=Max("created_at"))
        .order_by()
        .values_list("connection_id", "at")
    )
    if not latest:
        return {}
    out = {}
    rows = reported.filter(created_at__in=set(latest.values())).values_list(
        "connection_id", "quota_remaining", "quota_limit", "quota_reset_at", "created_at"
    )
    for connection_id, remaining, limit, reset_at, at in rows:
        if latest.get(connection_id) != at:
            continue
        if reset_at is not None and reset_at <= now:
            continue  # the window reset since: the reading is stale
        out[connection_id] = (remaining, limit, reset_at, at)
    return out


@register
class Quota(Rule):
    key = "quota"
    title = _("Quota")
    defaults = {"warn_percent": 75, "critical_percent": 90, "burst_429": 3, "burst_minutes": 5}

    def evaluate(self, ctx):
        found = []
        readings = latest_quotas(ctx.now)
        for connection in ctx.connections:
            params = ctx.params(self, connection_id=connection.pk)
            if params is None:
                continue
            reading = readings.get(connection.pk)
            if reading and reading[1]:
                remaining, limit, reset_at, _reported = reading
                used = round(100 * (limit - remaining) / limit)
                level = (
                    90
                    if used >= params["critical_percent"]
                    else 75
                    if used >= params["warn_percent"]
                    else 0
                )
                if level:
                    resets = (
                        _("; it resets at %(time)s") % {"time": fmt_time(reset_at)}
                        if reset_at
                        else ""
                    )
                    found.append(
                        self.connection_signal(
                            connection,
                            error_class="used",
                            level=level,
                            severity=Severity.CRITICAL if level == 90 else Severity.WARNING,
                            summary=_(
                                "%(used)s %% of the partner's quota for %(connection)s is used "
                                "(%(remaining)s of %(limit)s requests left%(resets)s)"
                            )
                            % {
                                "used": used,
                                "connection": connection,
                                "remaining": remaining,
                                "limit": limit,
                                "resets": resets,
                            },
                            advice=_(
                                "Spread or slow the calls (the connection's rate limit, the "
                                "syncs' schedules), or ask the partner for a larger quota "
                                "before it runs out."
                            ),
                            details={"remaining": remaining, "limit": limit, "used": used},
                        )
                    )
            burst = ctx.call_totals(params["burst_minutes"]).get(connection.pk)
            if burst and burst.rate_limited >= params["burst_429"]:
                found.append(
                    self.connection_signal(
                        connection,
                        error_class="429",
                        severity=Severity.WARNING,
                        summary=_(
                            "The partner answered 429 (too many requests) %(n)s times to "
                            "%(connection)s in %(minutes)s min"
                        )
                        % {
                            "n": burst.rate_limited,
                            "connection": connection,
                            "minutes": params["burst_minutes"],
                        },
                        advice=_(
                            "The hub waits as the partner asks (Retry-After) and retries. "
                            "Lower the connection's rate limit to stay under the partner's."
                        ),
                        details={"rate_limited": burst.rate_limited},
                    )
                )
        return found
