"""Time series for the charts, from the rollups only: volume and errors, latency p50 / p95
(estimated from the histogram, as Prometheus' ``histogram_quantile`` does)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Sum
from django.utils.translation import gettext

from monitoring.models import LATENCY_BUCKETS_MS, CallRollup, EventRollup
from monitoring.services.rollups import CALL_COUNTERS, EVENT_COUNTERS

__all__ = ["Series", "call_series", "event_totals", "quantile"]

WIDTH = len(LATENCY_BUCKETS_MS) + 1


def quantile(q: float, buckets: list[int]) -> float | None:
    """The q-quantile (ms) of a histogram of non-cumulative bucket counts, interpolated
    linearly inside its bucket; ``None`` for an empty histogram."""
    total = sum(buckets)
    if not total:
        return None
    target = q * total
    cumulative = 0
    for index, count in enumerate(buckets):
        if cumulative + count >= target and count:
            if index >= len(LATENCY_BUCKETS_MS):
                return float(LATENCY_BUCKETS_MS[-1])  # above the last bound: the bound
            lower = LATENCY_BUCKETS_MS[index - 1] if index else 0
            upper = LATENCY_BUCKETS_MS[index]
            return lower + (upper - lower) * (target - cumulative) / count
        cumulative += count
    return float(LATENCY_BUCKETS_MS[-1])


@dataclass
class Series:
    """Points of a chart: one label (the bucket's start) and one value per series."""

    labels: list[str] = field(default_factory=list)
    ok: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    not_sent: list[int] = field(default_factory=list)
    p50: list[float | None] = field(default_factory=list)
    p95: list[float | None] = field(default_factory=list)

    def volume_chart(self) -> dict:
        """Chart.js data: stacked bars of calls by outcome."""
        return {
            "type": "bar",
            "stacked": True,
            "labels": self.labels,
            "datasets": [
                {"label": gettext("succeeded"), "data": self.ok, "color": "#067647"},
                {"label": gettext("failed"), "data": self.failed, "color": "#b42318"},
                {
                    "label": gettext("not sent (circuit, busy)"),
                    "data": self.not_sent,
                    "color": "#98a2b3",
                },
            ],
        }

    def latency_chart(self) -> dict:
        """Chart.js data: latency p50 and p95 lines (ms)."""
        return {
            "type": "line",
            "labels": self.labels,
            "datasets": [
                {"label": gettext("p50 (ms)"), "data": self.p50, "color": "#175cd3"},
                {"label": gettext("p95 (ms)"), "data": self.p95, "color": "#b54708"},
            ],
        }

    def rows(self):
        """The accessible table behind the chart."""
        return zip(
            self.labels, self.ok, self.failed, self.not_sent, self.p50, self.p95, strict=True
        )


def call_series(connection_ids, now: datetime, *, hours: int, step_minutes: int) -> Series:
    """Calls of these connections (all, for ``None``) over the last ``hours``, in steps."""
    step = timedelta(minutes=step_minutes)
    end = now.replace(second=0, microsecond=0)
    start = end - timedelta(hours=hours)
    rows = CallRollup.objects.filter(start__gte=start - timedelta(hours=1), start__lte=end)
    if connection_ids is not None:
        rows = rows.filter(connection_id__in=connection_ids)
    count = int((end - start) / step) + 1
    buckets = [
        {"counts": dict.fromkeys(CALL_COUNTERS, 0), "latency": [0] * WIDTH} for _ in range(count)
    ]
    for row in rows.only(*CALL_COUNTERS, "start", "latency"):
        index = int((row.start - start) / step)
        if not 0 <= index < count:
            continue
        bucket = buckets[index]
        for name in CALL_COUNTERS:
            bucket["counts"][name] += getattr(row, name)
        for i, n in enumerate(row.latency or ()):
            bucket["latency"][i] += n
    series = Series()
    for index, bucket in enumerate(buckets):
        at = start + index * step
        counts = bucket["counts"]
        series.labels.append(at.strftime("%d %H:%M") if hours > 24 else at.strftime("%H:%M"))
        series.ok.append(counts["ok"])
        series.failed.append(
            counts["client_errors"]
            + counts["rate_limited"]
            + counts["server_errors"]
            + counts["network_errors"]
        )
        series.not_sent.append(counts["not_sent"])
        p50, p95 = quantile(0.5, bucket["latency"]), quantile(0.95, bucket["latency"])
        series.p50.append(round(p50) if p50 is not None else None)
        series.p95.append(round(p95) if p95 is not None else None)
    return series


def event_totals(now: datetime, hours: int = 24) -> dict[str, int]:
    """Events received, processed, retried, failed and refused over the last ``hours``."""
    since = now - timedelta(hours=hours)
    sums = EventRollup.objects.filter(start__gte=since).aggregate(
        **{name: Sum(name) for name in EVENT_COUNTERS}
    )
    return {name: sums[name] or 0 for name in EVENT_COUNTERS}
