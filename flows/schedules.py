"""Schedule-triggered flows run as django-q2 cron schedules, kept in step with the flows."""

from __future__ import annotations

from django_q.models import Schedule

from connectors import schedules
from flows.models import Flow, TriggerKind

TASK = "flows.services.dispatch.run_scheduled"


def schedule_name(flow: Flow) -> str:
    return f"flow:{flow.slug}"


def sync_schedule(flow: Flow) -> None:
    """Create, update or remove the flow's cron schedule."""
    active = flow.enabled and flow.trigger == TriggerKind.SCHEDULE
    schedules.follow(schedule_name(flow), TASK, (flow.slug,), flow.cron, active)


def on_flow_saved(sender, instance: Flow, **kwargs) -> None:
    if kwargs.get("raw"):
        return
    sync_schedule(instance)


def on_flow_deleted(sender, instance: Flow, **kwargs) -> None:
    Schedule.objects.filter(name=schedule_name(instance)).delete()
