"""Retention: every table that grows has a purge, run every few minutes by a django-q2 schedule.

Rows go when they are older than their connection's ``retention_days`` (GDPR: the connection's
documented retention) — API calls, webhook events and their attempts, flow runs, sync runs —
or, for the sandbox's request log, ``HUB_SANDBOX_RETENTION_DAYS``. Rows still in use (events to
process, runs in flight) are never purged.

The cost of a pass is bounded, whatever the backlog: deletes go by batches of primary keys
(``HUB_PURGE_BATCH_ROWS``, each its own short transaction, found through an index), with a
pause between batches as long as the batch took (at least ``HUB_PURGE_PAUSE_SECONDS``), so
that ingest takes the database's write lock in between (SQLite has one for the whole file)
and the purge never holds more than half of it; a pass stops after
``HUB_PURGE_MAX_ROWS_PER_PASS`` rows and the next pass goes on where it stopped. A million
expired rows go in a few passes while deliveries keep arriving (``make bench`` → purge).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

__all__ = ["Budget", "delete_in_batches", "per_connection_cutoffs"]


class Budget:
    """The rows one pass of a purge may still delete (shared by the querysets it purges)."""

    def __init__(self, rows: int | None = None):
        self.left = settings.HUB_PURGE_MAX_ROWS_PER_PASS if rows is None else rows

    def spend(self, rows: int) -> None:
        self.left -= rows


def delete_in_batches(
    queryset: QuerySet, batch_size: int | None = None, *, budget: Budget | None = None
) -> int:
    """Delete what ``queryset`` selects, ``batch_size`` rows per statement, until nothing is
    left or ``budget`` is spent; returns how many rows of its model were deleted (cascades
    not counted)."""
    model, total = queryset.model, 0
    batch_size = batch_size or settings.HUB_PURGE_BATCH_ROWS
    budget = budget or Budget()
    keys = queryset.order_by().values_list("pk", flat=True)
    while budget.left > 0:
        started = time.monotonic()
        ids = list(keys[: min(batch_size, budget.left)])
        if not ids:
            break
        deleted = model.objects.filter(pk__in=ids).delete()[1].get(model._meta.label, 0)
        total += deleted
        budget.spend(len(ids))
        if len(ids) < batch_size:
            break
        # let the others in between batches: at least as long as the batch took, so that a
        # purge never takes more than half of the database's writer (or of a core)
        time.sleep(max(settings.HUB_PURGE_PAUSE_SECONDS, time.monotonic() - started))
    return total


def per_connection_cutoffs() -> list[tuple[int, datetime]]:
    """(connection id, the time before which its rows are past retention)."""
    from connectors.models import Connection

    now = timezone.now()
    return [
        (pk, now - timedelta(days=days))
        for pk, days in Connection.objects.values_list("pk", "retention_days")
    ]
