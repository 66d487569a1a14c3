"""Retention: every table that grows has a purge, run hourly by a django-q2 schedule.

Rows go when they are older than their connection's ``retention_days`` (GDPR: the connection's
documented retention) — API calls, webhook events and their attempts, flow runs, sync runs —
or, for the sandbox's request log, ``HUB_SANDBOX_RETENTION_DAYS``. Rows still in use (events to
process, runs in flight) are never purged. Deletes go by batches of primary keys, so no
statement holds a lock for long.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import QuerySet
from django.utils import timezone

__all__ = ["delete_in_batches", "per_connection_cutoffs"]


def delete_in_batches(queryset: QuerySet, batch_size: int = 2000) -> int:
    """Delete what ``queryset`` selects, ``batch_size`` rows per statement; returns how many
    rows of its model were deleted (cascades not counted)."""
    model, total = queryset.model, 0
    while True:
        ids = list(queryset.values_list("pk", flat=True)[:batch_size])
        if not ids:
            return total
        deleted = model.objects.filter(pk__in=ids).delete()[1]
        total += deleted.get(model._meta.label, 0)


def per_connection_cutoffs() -> list[tuple[int, datetime]]:
    """(connection id, the time before which its rows are past retention)."""
    from connectors.models import Connection

    now = timezone.now()
    return [
        (pk, now - timedelta(days=days))
        for pk, days in Connection.objects.values_list("pk", "retention_days")
    ]
