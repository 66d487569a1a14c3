"""Silence: an endpoint that usually receives events has received none for much longer than
usual. "Usual" is learned per hour of the week from the rollups, with a minimum history, so a
quiet Sunday night is not an alert."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from django.db.models import OuterRef, Subquery
from django.utils.translation import gettext_lazy as _

from monitoring.choices import Severity
from monitoring.models import EventRollup
from monitoring.rules import Rule, fmt_duration, register
from webhooks.models import WebhookEndpoint, WebhookEvent


def hour_of_week(value: datetime) -> int:
    return value.weekday() * 24 + value.hour


def usual_rates(endpoint_id: int, until: datetime, weeks: int) -> tuple[dict[int, float], float]:
    """Mean events per hour for each hour of the week, learned from the ``weeks`` weeks before
    ``until`` (the silence itself is not learned from), and the days of history there are."""
    since = until - timedelta(weeks=weeks)
    rows = EventRollup.objects.filter(
        endpoint_id=endpoint_id, start__gte=since, start__lt=until, received__gt=0
    ).values_list("start", "received")
    counts: dict[int, int] = defaultdict(int)
    first = None
    for start, received in rows:
        counts[hour_of_week(start)] += received
        first = start if first is None or start < first else first
    if first is None:
        return {}, 0.0
    # how many times each hour of the week occurred in the history
    seen: dict[int, int] = defaultdict(int)
    hour = first.replace(minute=0, second=0, microsecond=0)
    while hour < until:
        seen[hour_of_week(hour)] += 1
        hour += timedelta(hours=1)
    rates = {h: counts.get(h, 0) / n for h, n in seen.items()}
    return rates, (until - first).total_seconds() / 86400


@register
class Silence(Rule):
    key = "silence"
    title = _("Silence")
    defaults = {
        "min_history_days": 14,
        "weeks": 4,
        "min_expected": 10,
        "min_silence_minutes": 60,
        "factor": 6,
    }

    def evaluate(self, ctx):
        endpoints = [e for e in ctx.endpoints if ctx.params(self, endpoint_id=e.pk) is not None]
        # each endpoint's latest event through the (endpoint, received_at) index: one query,
        # one index probe per endpoint, never a scan of the events table
        latest = WebhookEvent.objects.filter(endpoint=OuterRef("pk")).order_by("-received_at")
        last = dict(
            WebhookEndpoint.objects.filter(pk__in=[e.pk for e in endpoints])
            .annotate(at=Subquery(latest.values("received_at")[:1]))
            .values_list("pk", "at")
        )
        found = []
        for endpoint in endpoints:
            params = ctx.params(self, endpoint_id=endpoint.pk)
            at = last.get(endpoint.pk)
            if at is None:
                continue
            silent = (ctx.now - at).total_seconds()
            if silent < params["min_silence_minutes"] * 60:
                continue  # cheap test first: most endpoints are not silent
            rates, history_days = usual_rates(endpoint.pk, at, params["weeks"])
            if history_days < params["min_history_days"]:
                continue
            # the events the usual rates expect over the silent hours
            expected, hour = 0.0, at.replace(minute=0, second=0, microsecond=0)
            while hour < ctx.now:
                expected += rates.get(hour_of_week(hour), 0.0)
                hour += timedelta(hours=1)
            rate_now = rates.get(hour_of_week(ctx.now), 0.0)
            usual_gap = 3600 / rate_now if rate_now else None
            if expected < params["min_expected"]:
                continue
            if usual_gap is not None and silent < params["factor"] * usual_gap:
                continue
            usually = (
                _("usually every %(gap)s") % {"gap": fmt_duration(usual_gap)}
                if usual_gap
                else _("usually busy")
            )
            found.append(
                self.endpoint_signal(
                    endpoint,
                    severity=Severity.WARNING,
                    summary=_(
                        "No event received on endpoint %(endpoint)s for %(silent)s, %(usually)s "
                        "at this hour (about %(expected)s expected)"
                    )
                    % {
                        "endpoint": endpoint.slug,
                        "silent": fmt_duration(silent),
                        "usually": usually,
                        "expected": round(expected),
                    },
                    advice=_(
                        "Check the webhook's configuration at the partner (URL, events "
                        "subscribed, disabled after failures?) and the endpoint's refusals; the "
                        "partner's own delivery log says what it tried."
                    ),
                    details={"silent_seconds": int(silent), "expected": round(expected, 1)},
                )
            )
        return found
