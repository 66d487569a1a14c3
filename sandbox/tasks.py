"""django-q2 tasks of the sandbox partner."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from connectors.periodic import every
from connectors.retention import delete_in_batches
from sandbox.models import SandboxRequest


def purge_requests(batch_size: int | None = None) -> int:
    """The sandbox's request log keeps ``HUB_SANDBOX_RETENTION_DAYS`` days."""
    cutoff = timezone.now() - timedelta(days=settings.HUB_SANDBOX_RETENTION_DAYS)
    return delete_in_batches(SandboxRequest.objects.filter(received_at__lt=cutoff), batch_size)


def ensure_schedules(**kwargs) -> None:
    every(5, "sandbox: purge the request log", "sandbox.tasks.purge_requests")
