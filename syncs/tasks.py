"""django-q2 tasks of the syncs app (besides the runner's own)."""

from __future__ import annotations

from connectors.retention import Budget, delete_in_batches, per_connection_cutoffs
from syncs.models import RunState, SyncJob, SyncRun


def purge_old_runs(batch_size: int | None = None) -> int:
    """Delete finished sync runs older than their source connection's retention, at most a
    pass's budget of rows; returns how many. Running and paused runs are never purged."""
    cutoffs, budget = dict(per_connection_cutoffs()), Budget()
    return sum(
        delete_in_batches(  # by job: the index on (job, started_at) finds them
            SyncRun.objects.filter(job_id=job_id, started_at__lt=cutoffs[connection_id]).exclude(
                status__in=[RunState.RUNNING, RunState.PAUSED]
            ),
            batch_size,
            budget=budget,
        )
        for job_id, connection_id in SyncJob.objects.filter(
            source_connection__isnull=False
        ).values_list("pk", "source_connection")
    )
