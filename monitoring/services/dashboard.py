"""What the console's home page shows: connections with their health, open incidents, events
by status and the backlog, the expiry calendar, the syncs' freshness, and 24 h of calls. Read
from rollups, incidents and small tables only: its cost does not grow with the call log."""

from __future__ import annotations

from django.utils import timezone

from connectors.models import Connection
from flows.models import Flow
from monitoring.choices import ACTIVE_STATES, TargetType
from monitoring.models import Incident
from monitoring.rules import fmt_duration
from monitoring.rules.backlog import backlog
from monitoring.rules.expiry import calendar
from monitoring.rules.hub import heartbeat_age
from monitoring.rules.sync_freshness import freshness
from monitoring.services.health import flow_health, health_by_target
from monitoring.services.series import call_series, event_totals
from syncs.models import SyncJob
from webhooks.models import WebhookEndpoint

__all__ = ["dashboard"]

LIMIT = 200


def dashboard(now=None) -> dict:
    now = now or timezone.now()
    connections = list(Connection.objects.order_by("name")[:LIMIT])
    health = health_by_target(TargetType.CONNECTION, connections)
    pending, oldest = backlog(now)
    beat = heartbeat_age()
    endpoints = list(WebhookEndpoint.objects.select_related("connection").order_by("slug")[:LIMIT])
    flows = list(Flow.objects.select_related("connection", "endpoint").order_by("slug")[:LIMIT])
    endpoint_health = health_by_target(TargetType.ENDPOINT, endpoints)
    flows_health = flow_health(flows)
    jobs = [
        job for job in SyncJob.objects.filter(enabled=True).order_by("slug")[:LIMIT] if job.cron
    ]
    sync_health = health_by_target(TargetType.SYNC_JOB, jobs)
    return {
        "now": now,
        "connections": [(c, health[c.pk]) for c in connections],
        "endpoints": [(e, endpoint_health[e.pk]) for e in endpoints],
        "flows": [(f, flows_health[f.pk]) for f in flows],
        "incidents": list(
            Incident.objects.filter(state__in=ACTIVE_STATES).order_by("severity", "-opened_at")[:20]
        ),
        "incident_count": Incident.objects.filter(state__in=ACTIVE_STATES).count(),
        "events": event_totals(now),
        "pending": pending,
        "oldest": fmt_duration(oldest) if pending else "",
        "heartbeat": None if beat is None else fmt_duration(beat),
        "calendar": [
            (entry, fmt_duration((entry.at - now).total_seconds()) if entry.at > now else "")
            for entry in calendar(now)
        ],
        "syncs": [
            (job, state, since, sync_health[job.pk])
            for job, state, since, _ in freshness(jobs, now)
        ],
        "calls": call_series(None, now, hours=24, step_minutes=30),
    }
