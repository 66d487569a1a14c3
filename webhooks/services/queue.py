"""Putting processing work on django-q2's queue, through one broker per process.

``async_task()`` without a broker builds a new one per call (a new Redis connection with the
Redis broker); the hub keeps one per process.
"""

from __future__ import annotations

import functools
import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.tasks import async_task

logger = logging.getLogger("webhooks.queue")

PROCESS_TASK = "webhooks.tasks.process_event"
# The same processing, for an event known by its unique (endpoint, event id): its task can be
# built before the event row exists, so the write transaction holds only two INSERTs.
PROCESS_DELIVERY_TASK = "webhooks.tasks.process_delivery"


@functools.lru_cache(maxsize=1)
def _broker():
    return get_broker()


def queue_is_in_the_database() -> bool:
    """True with django-q2's ORM broker: its task rows live in the same database as events."""
    return "orm" in settings.Q_CLUSTER


class _Capture:
    """A stand-in broker: keeps the signed package ``async_task()`` builds instead of sending
    it, so that the ORM broker's row can be written by the caller, inside its own INSERT."""

    def __init__(self, list_key: str):
        self.list_key = list_key
        self.package = None

    def enqueue(self, package):
        self.package = package
        return "(its row is written with the event)"  # what async_task() logs as the id


def task_row(func: str, *args, task_name: str) -> OrmQ:
    """The ORM broker's queue row for a task (unsaved): exactly what ``async_task()`` would
    have written, signed package included."""
    capture = _Capture(_broker().list_key or Conf.CLUSTER_NAME)
    async_task(func, *args, broker=capture, task_name=task_name)
    return OrmQ(key=capture.list_key, payload=capture.package, lock=timezone.now())


def enqueue_after_commit(event_pk: int) -> None:
    """Queue an event's processing once the transaction that stores it commits (Redis broker),
    so a worker never looks for an event that is not visible yet; if that push is lost, the
    sweeper enqueues the event again. (With the ORM broker, ingest writes the task row in the
    event's own transaction: see :func:`task_row`.)"""
    transaction.on_commit(lambda: enqueue_processing(event_pk))


def enqueue_processing(event_pk: int) -> None:
    """Queue the processing of one event. A failure here loses nothing: the event row is
    stored, and the sweeper enqueues it again."""
    try:
        async_task(PROCESS_TASK, event_pk, broker=_broker(), task_name=f"webhook-event-{event_pk}")
    except Exception:
        logger.exception("could not enqueue webhook event %s; the sweeper will", event_pk)
