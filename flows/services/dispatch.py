"""Where flows meet their triggers: webhook events, schedules and manual runs."""

from __future__ import annotations

import logging
from fnmatch import fnmatchcase

from django.utils import timezone

from connectors.engine import config_cache
from connectors.engine.errors import PermanentError
from flows.mapping import MappingError
from flows.models import Flow, TriggerKind
from flows.paths import MISSING, get_path
from flows.services.runner import RunResult, run_flow

__all__ = ["cancel_for_event", "flows_for_event", "on_webhook_event", "run_manual", "run_scheduled"]

logger = logging.getLogger("flows.dispatch")


def _webhook_flows(endpoint_slug: str) -> list[Flow]:
    """The enabled webhook flows of an endpoint, from the process cache while the configuration
    generation holds (saving or deleting a flow, mapping, connection or endpoint bumps it; other
    processes see it within 0.5 s)."""
    config_cache.current_generation(max_age=0.5)
    return config_cache.cached_value(
        "flows.webhook",
        endpoint_slug,
        lambda: list(
            Flow.objects.filter(
                enabled=True, trigger=TriggerKind.WEBHOOK, endpoint__slug=endpoint_slug
            ).select_related("connection", "mapping")
        ),
    )


def flows_for_event(endpoint_slug: str, event_type: str) -> list[Flow]:
    return [
        flow
        for flow in _webhook_flows(endpoint_slug)
        if fnmatchcase(event_type or "", flow.event_type or "*")
    ]


def on_webhook_event(event) -> None:
    """The webhook handler that runs every flow matching an event (registered for all
    endpoints and types by the flows app). A mapping error or a partner's refusal fails the
    event at once; anything else is retried by the event's retry schedule."""
    from webhooks.handlers import NOT_HANDLED, HandlerPermanentError

    flows = flows_for_event(event.endpoint, event.event_type)
    cancelled = cancel_for_event(event)
    if not flows and not cancelled:
        return NOT_HANDLED
    for flow in flows:
        try:
            run_flow(
                flow,
                event.payload,
                trigger=TriggerKind.WEBHOOK,
                trigger_ref=f"{event.endpoint}:{event.event_id}",
                event_id=event.pk,
                variables={"event_id": event.event_id, "endpoint": event.endpoint},
                correlation_id=event.correlation_id,
            )
        except (MappingError, PermanentError) as exc:
            raise HandlerPermanentError(f"flow {flow.slug}: {exc}") from exc


def cancel_for_event(event) -> bool:
    """Cancel the pending steps of the runs this event names, for each workflow of its
    endpoint whose cancelling event type it has; True when some workflow listens for it."""
    from flows.services.workflow import cancel_runs

    listening = [
        flow
        for flow in _webhook_flows(event.endpoint)
        if flow.cancel_event_type and fnmatchcase(event.event_type or "", flow.cancel_event_type)
    ]
    for flow in listening:
        found = get_path(event.payload, flow.cancel_key_path or flow.correlation_key)
        if found is MISSING or found is None:
            logger.warning(
                "event %s:%s cancels runs of flow %s but holds no %s",
                event.endpoint,
                event.event_id,
                flow.slug,
                flow.cancel_key_path or flow.correlation_key,
                extra={"correlation_id": event.correlation_id},
            )
            continue
        cancel_runs(
            flow,
            str(found),
            by=f"event {event.event_type} ({event.endpoint}:{event.event_id})",
        )
    return bool(listening)


def run_manual(flow: Flow, payload, *, trigger_ref: str) -> RunResult:
    return run_flow(flow, payload, trigger=TriggerKind.MANUAL, trigger_ref=trigger_ref)


def run_scheduled(slug: str) -> str:
    """The django-q2 task of a schedule-triggered flow."""
    flow = Flow.objects.select_related("connection", "mapping").filter(slug=slug).first()
    if flow is None or not flow.enabled or flow.trigger != TriggerKind.SCHEDULE:
        return "skipped"
    now = timezone.now()
    payload = {"flow": flow.slug, "scheduled_at": now.isoformat()}
    result = run_flow(
        flow,
        payload,
        trigger=TriggerKind.SCHEDULE,
        trigger_ref=f"schedule:{now:%Y-%m-%dT%H:%M}",
    )
    return result.run.status
