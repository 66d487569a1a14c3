"""django-q2 tasks of the syncs app (besides the runner's own)."""

from __future__ import annotations

from connectors.retention import delete_in_batches, per_connection_cutoffs
from syncs.models import RunState, SyncRun


def purge_old_runs(batch_size: int = 2000) -> int:
    """Delete finished sync runs older than their source connection's retention; returns how
    many. Running and paused runs are never purged."""
    return sum(
        delete_in_batches(
            SyncRun.objects.filter(
                job__source_connection_id=connection_id, started_at__lt=cutoff
            ).exclude(status__in=[RunState.RUNNING, RunState.PAUSED]),
            batch_size,
        )
        for connection_id, cutoff in per_connection_cutoffs()
    )
