"""django-q2 tasks of the flows app."""

from __future__ import annotations

from django.utils import timezone

from connectors.periodic import every
from connectors.retention import Budget, delete_in_batches, per_connection_cutoffs
from flows.models import Flow, FlowCancellation, FlowRun, RunStatus


def purge_old_runs(batch_size: int | None = None) -> int:
    """Delete finished flow runs older than their connection's retention, and the cancellations
    kept past their window, at most a pass's budget of rows; returns how many. A run still
    running is never purged."""
    from flows.services.workflow import EARLY_CANCEL_WINDOW

    cutoffs, budget = dict(per_connection_cutoffs()), Budget()
    expired = FlowCancellation.objects.filter(received_at__lt=timezone.now() - EARLY_CANCEL_WINDOW)
    return delete_in_batches(expired, batch_size, budget=budget) + sum(
        delete_in_batches(  # by flow: the index on (flow, started_at) finds them
            FlowRun.objects.filter(flow_id=flow_id, started_at__lt=cutoffs[connection_id]).exclude(
                status=RunStatus.RUNNING
            ),
            batch_size,
            budget=budget,
        )
        for flow_id, connection_id in Flow.objects.values_list("pk", "connection")
    )


def resume_runs(pks: list[int], lease=None) -> str:
    """Carry a chunk of workflow runs whose delay ended (or that were retried by hand)."""
    from flows.services.workflow import resume_runs as resume

    return resume(pks, lease)


def resume_run(pk: int) -> str:
    """One run: what a hub before resumption by chunks queued (still in a queue at upgrade)."""
    from flows.services.workflow import resume_run as resume

    return resume(pk)


def ensure_schedules(**kwargs) -> None:
    """Created after every ``migrate`` (idempotent)."""
    every(5, "flows: purge runs past their retention", "flows.tasks.purge_old_runs")
