"""What an incident affects: the events waiting because of it and the calls that failed, for
its page and its *Retry all*."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Q

from connectors.models import ApiCall
from monitoring.choices import TargetType
from monitoring.models import Incident
from webhooks.choices import EventStatus
from webhooks.models import WebhookEvent
from webhooks.services.processing import retry_now

__all__ = ["WAITING", "affected_calls", "affected_events", "retry_all"]

WAITING = (EventStatus.FAILED, EventStatus.DEAD, EventStatus.RETRYING)


def affected_events(incident: Incident, limit: int = 200):
    """Events that wait (failed, dead, retrying) on the incident's endpoint, or whose flow runs
    call the incident's connection since shortly before it opened."""
    events = WebhookEvent.objects.filter(status__in=WAITING).defer("body", "headers")
    if incident.endpoint_id:
        events = events.filter(endpoint_id=incident.endpoint_id)
    elif incident.connection_id and incident.target_type == TargetType.CONNECTION:
        since = incident.opened_at - timedelta(hours=1)
        events = events.filter(
            Q(flow_runs__flow__connection_id=incident.connection_id)
            & Q(flow_runs__started_at__gte=since)
        ).distinct()
    else:
        return WebhookEvent.objects.none()
    return events.select_related("endpoint").order_by("received_at", "id")[:limit]


def affected_calls(incident: Incident, limit: int = 50):
    """The connection's failed calls since shortly before the incident opened."""
    if not incident.connection_id:
        return ApiCall.objects.none()
    since = incident.opened_at - timedelta(minutes=15)
    return (
        ApiCall.objects.filter(connection_id=incident.connection_id, created_at__gte=since)
        .filter(Q(status_code__gte=400) | Q(status_code__isnull=True))
        .order_by("-created_at", "-id")[:limit]
    )


def retry_all(incident: Incident, *, actor=None) -> int:
    """Queue every affected event at once (the events' own retry: idempotent effects)."""
    return sum(retry_now(event, actor=actor) for event in affected_events(incident, limit=10_000))
