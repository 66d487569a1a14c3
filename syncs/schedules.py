"""Each job with a cron expression has a django-q2 cron schedule ``sync:<slug>``; paused runs
continue through one-off schedules ``sync-continue:<run id>``."""

from __future__ import annotations

from django_q.models import Schedule

from connectors import schedules
from connectors.periodic import every
from syncs.models import SyncJob

TASK = "syncs.services.runner.scheduled_run"
CONTINUE_TASK = "syncs.services.runner.continue_run"


def sync_schedule(job: SyncJob) -> None:
    schedules.follow(f"sync:{job.slug}", TASK, (job.slug,), job.cron, job.enabled)


def schedule_continuation(run, when) -> None:
    Schedule.objects.update_or_create(
        name=f"sync-continue:{run.pk}",
        defaults={
            "func": CONTINUE_TASK,
            "args": repr((run.pk,)),
            "schedule_type": Schedule.ONCE,
            "next_run": when,
            "repeats": 1,
        },
    )


def on_job_saved(sender, instance: SyncJob, **kwargs) -> None:
    if not kwargs.get("raw"):
        sync_schedule(instance)


def on_job_deleted(sender, instance: SyncJob, **kwargs) -> None:
    Schedule.objects.filter(name=f"sync:{instance.slug}").delete()


def ensure(**kwargs) -> None:
    """The safety net, created after every ``migrate``: once a minute, continue paused runs
    whose time has come and runs whose worker was lost; hourly, the retention purge."""
    every(1, "syncs: sweep (due continuations, lost runs)", "syncs.services.runner.sweep")
    every(5, "syncs: purge runs past their retention", "syncs.tasks.purge_old_runs")
