"""django-q2 tasks of the flows app."""

from __future__ import annotations

from connectors.periodic import every
from connectors.retention import delete_in_batches, per_connection_cutoffs
from flows.models import FlowRun, RunStatus


def purge_old_runs(batch_size: int = 2000) -> int:
    """Delete finished flow runs older than their connection's retention; returns how many.
    A run still running is never purged."""
    return sum(
        delete_in_batches(
            FlowRun.objects.filter(
                flow__connection_id=connection_id, started_at__lt=cutoff
            ).exclude(status=RunStatus.RUNNING),
            batch_size,
        )
        for connection_id, cutoff in per_connection_cutoffs()
    )


def ensure_schedules(**kwargs) -> None:
    """Created after every ``migrate`` (idempotent)."""
    every(60, "flows: purge runs past their retention", "flows.tasks.purge_old_runs")
