"""Putting processing work on django-q2's queue, through one broker per process.

``async_task()`` without a broker builds a new one per call (a new Redis connection with the
Redis broker); the hub keeps one per process.
"""

from __future__ import annotations

import functools
import logging

from django_q.brokers import get_broker
from django_q.tasks import async_task

logger = logging.getLogger("webhooks.queue")

PROCESS_TASK = "webhooks.tasks.process_event"


@functools.lru_cache(maxsize=1)
def _broker():
    return get_broker()


def enqueue_processing(event_pk: int) -> None:
    """Queue the processing of one event. A failure here loses nothing: the event row is
    stored, and the sweeper enqueues it again."""
    try:
        async_task(PROCESS_TASK, event_pk, broker=_broker(), task_name=f"webhook-event-{event_pk}")
    except Exception:
        logger.exception("could not enqueue webhook event %s; the sweeper will", event_pk)
