"""Schedule-triggered flows run as django-q2 cron schedules, kept in step with the flows."""

from __future__ import annotations

from django_q.models import Schedule

from flows.models import Flow, TriggerKind

TASK = "flows.services.dispatch.run_scheduled"


def schedule_name(flow: Flow) -> str:
    return f"flow:{flow.slug}"


def sync_schedule(flow: Flow) -> None:
    """Create, update or remove the flow's cron schedule."""
    name = schedule_name(flow)
    if flow.enabled and flow.trigger == TriggerKind.SCHEDULE and flow.cron:
        Schedule.objects.update_or_create(
            name=name,
            defaults={
                "func": TASK,
                "args": repr((flow.slug,)),
                "schedule_type": Schedule.CRON,
                "cron": flow.cron,
                "repeats": -1,
            },
        )
    else:
        Schedule.objects.filter(name=name).delete()


def on_flow_saved(sender, instance: Flow, **kwargs) -> None:
    if kwargs.get("raw"):
        return
    sync_schedule(instance)


def on_flow_deleted(sender, instance: Flow, **kwargs) -> None:
    Schedule.objects.filter(name=schedule_name(instance)).delete()
