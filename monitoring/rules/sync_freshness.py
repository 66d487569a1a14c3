"""Sync freshness, as Airbyte shows it: on time, delayed (no successful run within one
schedule interval), error (none within two)."""

from __future__ import annotations

from datetime import datetime, timedelta

from croniter import croniter
from django.db.models import Max
from django.utils.translation import gettext_lazy as _

from monitoring.choices import Severity, TargetType
from monitoring.rules import Rule, fmt_duration, fmt_time, register
from syncs.models import RunState, SyncJob, SyncRun

ON_TIME, DELAYED, ERROR = "on time", "delayed", "error"


def interval(cron: str, now: datetime) -> timedelta:
    """The job's schedule interval around now (the gap between its last two fire times)."""
    it = croniter(cron, now)
    last = it.get_prev(datetime)
    before = it.get_prev(datetime)
    return last - before


def freshness(jobs, now: datetime) -> list[tuple[SyncJob, str, datetime, timedelta]]:
    """(job, on time / delayed / error, the last success or the job's creation, interval)."""
    last_success = dict(
        SyncRun.objects.filter(job__in=jobs, status__in=(RunState.SUCCEEDED, RunState.PARTIAL))
        .values("job_id")
        .annotate(at=Max("finished_at"))
        .values_list("job_id", "at")
    )
    out = []
    for job in jobs:
        every = interval(job.cron, now)
        since = last_success.get(job.pk) or job.created_at
        grace = min(every * 0.1, timedelta(minutes=10))
        age = now - since
        state = ERROR if age > 2 * every + grace else DELAYED if age > every + grace else ON_TIME
        out.append((job, state, since, every))
    return out


@register
class SyncFreshness(Rule):
    key = "sync_freshness"
    title = _("Sync freshness")
    defaults = {}

    def evaluate(self, ctx):
        jobs = [job for job in SyncJob.objects.filter(enabled=True) if job.cron]
        found = []
        for job, state, since, every in freshness(jobs, ctx.now):
            if state == ON_TIME:
                continue
            if ctx.params(self, connection_id=job.source_connection_id) is None:
                continue
            found.append(
                self.signal(
                    target_type=TargetType.SYNC_JOB,
                    target_id=job.pk,
                    target_label=f"sync {job.slug}",
                    connection_id=job.source_connection_id,
                    level=2 if state == ERROR else 1,
                    severity=Severity.CRITICAL if state == ERROR else Severity.WARNING,
                    summary=_(
                        "Sync %(job)s is %(state)s: no successful run since %(since)s "
                        "(%(ago)s; it runs every %(every)s)"
                    )
                    % {
                        "job": job.slug,
                        "state": state,
                        "since": fmt_time(since),
                        "ago": fmt_duration((ctx.now - since).total_seconds()),
                        "every": fmt_duration(every.total_seconds()),
                    },
                    advice=_(
                        "Open its latest runs: the first errors say why. Fix the cause, then "
                        "Run now; the cursor resumes where the last good page ended."
                    ),
                    details={"state": state, "since": since.isoformat()},
                )
            )
        return found
