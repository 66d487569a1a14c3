"""``/metrics``: the Prometheus exposition, written by ``prometheus_client``.

Every value is computed at scrape time from the shared rows (running totals and the recent
rollups, incidents, credentials, the backlog), not kept in process memory: any gunicorn worker
of any machine answers the same figures, with nothing to aggregate and no multiprocess
directory to manage (``prometheus_client``'s multiprocess mode sums one machine's processes
only). Counters are monotonic: final minutes are added to the running totals once, and the
rollups purged later are already in them. Labels are slugs and classes, never personal data.
"""

from __future__ import annotations

from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector, CollectorRegistry

from connectors.choices import CredentialState
from connectors.models import Connection, Credential
from monitoring.choices import ACTIVE_STATES
from monitoring.models import (
    LATENCY_BUCKETS_MS,
    MINUTE,
    CallRollup,
    EventRollup,
    Incident,
    RunningTotal,
)
from monitoring.rules.backlog import backlog
from monitoring.rules.hub import heartbeat_age
from monitoring.rules.quota import latest_quotas
from monitoring.services.rollups import add_counts, counts_of
from webhooks.models import EndpointRefusals, WebhookEndpoint

STATUS_CLASSES = {
    "ok": "2xx",
    "client_errors": "4xx",
    "rate_limited": "429",
    "server_errors": "5xx",
    "network_errors": "network",
    "not_sent": "not_sent",
}


def _totals(model, owner: str, prefix: str) -> dict[int, dict]:
    """Running totals plus the minutes not final yet, per connection or endpoint."""
    out: dict[int, dict] = {}
    for total in RunningTotal.objects.filter(key__startswith=prefix):
        out[int(total.key.split(":", 1)[1])] = dict(total.data)
    for row in model.objects.filter(resolution=MINUTE, final=False):
        add_counts(out.setdefault(getattr(row, owner), {}), counts_of(row))
    return out


class HubCollector(Collector):
    def collect(self):
        now = timezone.now()
        slugs = dict(Connection.objects.values_list("pk", "slug"))
        endpoints = dict(WebhookEndpoint.objects.values_list("pk", "slug"))

        calls = CounterMetricFamily(
            "hub_api_calls", "Outbound call attempts.", labels=["connection", "status_class"]
        )
        durations = HistogramMetricFamily(
            "hub_api_call_duration_seconds",
            "Duration of the outbound call attempts that reached for the partner.",
            labels=["connection"],
        )
        for pk, data in sorted(_totals(CallRollup, "connection_id", "connection:").items()):
            slug = slugs.get(pk)
            if slug is None:
                continue
            for name, label in STATUS_CLASSES.items():
                calls.add_metric([slug, label], data.get(name, 0))
            latency = data.get("latency") or [0] * (len(LATENCY_BUCKETS_MS) + 1)
            cumulative, buckets = 0, []
            for bound, n in zip((*LATENCY_BUCKETS_MS, None), latency, strict=True):
                cumulative += n
                buckets.append(("+Inf" if bound is None else str(bound / 1000), cumulative))
            durations.add_metric([slug], buckets, data.get("duration_ms_sum", 0) / 1000)
        yield calls
        yield durations

        events = CounterMetricFamily(
            "hub_webhook_events",
            "Webhook deliveries stored (received) and processing attempts by outcome.",
            labels=["endpoint", "status"],
        )
        refusals = CounterMetricFamily(
            "hub_webhook_refusals",
            "Deliveries refused, by kind: signature (or timestamp), address, size, malformed, "
            "not_ready.",
            labels=["endpoint", "reason"],
        )
        for pk, data in sorted(_totals(EventRollup, "endpoint_id", "endpoint:").items()):
            slug = endpoints.get(pk)
            if slug is None:
                continue
            for name in ("received", "processed", "unhandled", "retried", "failed"):
                events.add_metric([slug, name], data.get(name, 0))
        for endpoint_id, kind, count in EndpointRefusals.objects.order_by(
            "endpoint_id", "kind"
        ).values_list("endpoint_id", "kind", "count"):
            if endpoint_id in endpoints:
                refusals.add_metric([endpoints[endpoint_id], kind], count)
        yield events
        yield refusals

        pending, age = backlog(now)
        yield GaugeMetricFamily(
            "hub_queue_pending_events", "Events waiting to be processed.", value=pending
        )
        yield GaugeMetricFamily(
            "hub_queue_oldest_pending_seconds",
            "Age of the oldest event waiting to be processed.",
            value=age,
        )
        beat = heartbeat_age()
        yield GaugeMetricFamily(
            "hub_worker_heartbeat_age_seconds",
            "Seconds since a worker last ran the heartbeat task (-1: never).",
            value=-1 if beat is None else beat,
        )

        open_incidents = GaugeMetricFamily(
            "hub_incidents_open", "Open and acknowledged incidents.", labels=["rule", "severity"]
        )
        for row in (
            Incident.objects.filter(state__in=ACTIVE_STATES)
            .values("rule", "severity")
            .annotate(n=Count("id"))
            .order_by("rule", "severity")
        ):
            open_incidents.add_metric([row["rule"], row["severity"]], row["n"])
        yield open_incidents

        expiry = GaugeMetricFamily(
            "hub_credential_expiry_timestamp_seconds",
            "When the soonest-expiring usable credential of each kind expires (Unix time).",
            labels=["connection", "kind"],
        )
        for row in (
            Credential.objects.filter(
                state__in=(CredentialState.ACTIVE, CredentialState.RETIRING),
                expires_at__isnull=False,
            )
            .values("connection_id", "kind")
            .annotate(at=Min("expires_at"))
            .order_by("connection_id", "kind")
        ):
            if row["connection_id"] in slugs:
                expiry.add_metric([slugs[row["connection_id"]], row["kind"]], row["at"].timestamp())
        yield expiry

        quota = GaugeMetricFamily(
            "hub_quota_remaining_ratio",
            "Share of the partner's quota left, as its rate-limit headers last said.",
            labels=["connection"],
        )
        for pk, reading in sorted(latest_quotas(now).items()):
            if reading[1] and pk in slugs:
                quota.add_metric([slugs[pk]], reading[0] / reading[1])
        yield quota


def registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HubCollector())
    return registry
