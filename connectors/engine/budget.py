"""The time budget of the task in progress (a webhook event's processing, a sync page).

A django-q2 task that runs past the cluster's ``timeout`` is killed mid-call. Inside a task,
every ``hub.call()`` shares the task's remaining time — its deadline (retries included) and each
attempt's read timeout never go past it — and a wait longer than ``HUB_INLINE_WAIT_SECONDS``
(a partner's ``Retry-After``, a long backoff) is not slept in the worker: the call raises a
``RetryableError`` with ``retry_at``, and the event's retry is scheduled for then.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from contextvars import ContextVar

from django.conf import settings

__all__ = ["inline_wait_limit", "remaining", "task_budget", "task_seconds"]

_deadline: ContextVar[float | None] = ContextVar("hub_task_deadline", default=None)


def task_seconds() -> float:
    """A task's budget: the cluster's timeout, less a margin to record how it ended."""
    timeout = float(settings.Q_CLUSTER.get("timeout") or 120)
    return max(5.0, timeout - min(15.0, timeout / 4))


@contextmanager
def task_budget(seconds: float | None = None):
    """Run the block under a budget of ``seconds`` (the task's, by default); nested budgets
    keep the earlier deadline."""
    deadline = time.monotonic() + (task_seconds() if seconds is None else seconds)
    outer = _deadline.get()
    token = _deadline.set(deadline if outer is None else min(outer, deadline))
    try:
        yield
    finally:
        _deadline.reset(token)


def remaining() -> float | None:
    """Seconds left in the task's budget; None outside a task."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()


def inline_wait_limit() -> float | None:
    """Inside a task: the longest wait slept in the worker; None outside one (site code's
    own calls wait as their deadline allows)."""
    if _deadline.get() is None:
        return None
    return float(settings.HUB_INLINE_WAIT_SECONDS)
