"""Putting processing work on django-q2's queue, through one broker per process.

``async_task()`` without a broker builds a new one per call (a new Redis connection with the
Redis broker); the hub keeps one per process.
"""

from __future__ import annotations

import functools
import logging

from django.conf import settings
from django.db import transaction
from django_q.brokers import get_broker
from django_q.tasks import async_task

logger = logging.getLogger("webhooks.queue")

PROCESS_TASK = "webhooks.tasks.process_event"


@functools.lru_cache(maxsize=1)
def _broker():
    return get_broker()


def queue_is_in_the_database() -> bool:
    """True with django-q2's ORM broker: its task rows live in the same database as events."""
    return "orm" in settings.Q_CLUSTER


def enqueue_with_event(event_pk: int) -> None:
    """Queue an event's processing as part of the transaction that stores it.

    With the ORM broker the task row is written in that same transaction (one commit, and the
    task exists exactly when the event does). With Redis the task goes out after the commit, so
    a worker never looks for an event that is not visible yet; if that push is lost, the sweeper
    enqueues the event again.
    """
    if queue_is_in_the_database():
        async_task(PROCESS_TASK, event_pk, broker=_broker(), task_name=f"webhook-event-{event_pk}")
    else:
        transaction.on_commit(lambda: enqueue_processing(event_pk))


def enqueue_processing(event_pk: int) -> None:
    """Queue the processing of one event. A failure here loses nothing: the event row is
    stored, and the sweeper enqueues it again."""
    try:
        async_task(PROCESS_TASK, event_pk, broker=_broker(), task_name=f"webhook-event-{event_pk}")
    except Exception:
        logger.exception("could not enqueue webhook event %s; the sweeper will", event_pk)
