"""The partner's quota: the share used, read from its rate-limit headers (warnings at 75 and
90 %), and bursts of 429."""

from __future__ import annotations

from connectors.models import ApiCall
from monitoring.choices import Severity, TargetType
from monitoring.rules import Rule, fmt_time, register


def latest_quota(connection, now):
    """The latest quota the partner reported, while its window has not reset: (remaining,
    limit, reset_at, at) or ``None``."""
    row = (
        ApiCall.objects.filter(connection=connection, quota_remaining__isnull=False)
        .order_by("-created_at")
        .values_list("quota_remaining", "quota_limit", "quota_reset_at", "created_at")
        .first()
    )
    if row is None:
        return None
    remaining, limit, reset_at, at = row
    if reset_at is not None and reset_at <= now:
        return None  # the window reset since: the reading is stale
    return remaining, limit, reset_at, at


@register
class Quota(Rule):
    key = "quota"
    title = "Quota"
    defaults = {"warn_percent": 75, "critical_percent": 90, "burst_429": 3, "burst_minutes": 5}

    def evaluate(self, ctx):
        found = []
        for connection in ctx.connections:
            params = ctx.params(self, connection_id=connection.pk)
            if params is None:
                continue
            reading = latest_quota(connection, ctx.now)
            if reading and reading[1]:
                remaining, limit, reset_at, _ = reading
                used = round(100 * (limit - remaining) / limit)
                level = (
                    90
                    if used >= params["critical_percent"]
                    else 75
                    if used >= params["warn_percent"]
                    else 0
                )
                if level:
                    resets = f"; it resets at {fmt_time(reset_at)}" if reset_at else ""
                    found.append(
                        self.signal(
                            target_type=TargetType.CONNECTION,
                            target_id=connection.pk,
                            target_label=str(connection),
                            connection_id=connection.pk,
                            error_class="used",
                            level=level,
                            severity=Severity.CRITICAL if level == 90 else Severity.WARNING,
                            summary=f"{used} % of the partner's quota for {connection} is used "
                            f"({remaining} of {limit} requests left{resets})",
                            advice="Spread or slow the calls (the connection's rate limit, the "
                            "syncs' schedules), or ask the partner for a larger quota before it "
                            "runs out.",
                            details={"remaining": remaining, "limit": limit, "used": used},
                        )
                    )
            burst = ctx.call_totals(params["burst_minutes"]).get(connection.pk)
            if burst and burst.rate_limited >= params["burst_429"]:
                found.append(
                    self.signal(
                        target_type=TargetType.CONNECTION,
                        target_id=connection.pk,
                        target_label=str(connection),
                        connection_id=connection.pk,
                        error_class="429",
                        severity=Severity.WARNING,
                        summary=f"The partner answered 429 (too many requests) "
                        f"{burst.rate_limited} times to {connection} in "
                        f"{params['burst_minutes']} min",
                        advice="The hub waits as the partner asks (Retry-After) and retries. "
                        "Lower the connection's rate limit to stay under the partner's.",
                        details={"rate_limited": burst.rate_limited},
                    )
                )
        return found
