"""Putting processing work on django-q2's queue, through one broker per process.

``async_task()`` without a broker builds a new one per call (a new Redis connection with the
Redis broker); the hub keeps one per process.

With a broker outside the database (Redis), the webhook request path does not push at all: it
hands the stored event's key to this process's :data:`pusher`, whose thread pushes it once the
request has been answered. The partner's 2xx never waits on Redis (nor on a Redis
outage), and the row stays the truth: an event whose push is lost (process killed, Redis down)
is queued again by the sweeper.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.brokers.redis_broker import Redis as RedisBroker
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.signals import pre_enqueue
from django_q.signing import SignedPackage
from django_q.tasks import async_task

from connectors import rows

logger = logging.getLogger("webhooks.queue")

PROCESS_TASK = "webhooks.tasks.process_event"


@functools.lru_cache(maxsize=1)
def _broker():
    return get_broker()


def queue_is_in_the_database() -> bool:
    """True with django-q2's ORM broker: its task rows live in the same database as events."""
    return "orm" in settings.Q_CLUSTER


class BackgroundPusher:
    """Hands submitted items to ``push_many(items)`` from one thread of this process.

    ``submit()`` is a put on a C-implemented queue: the caller (a web request) does not wait
    for the broker. The thread collects what arrives within ``linger`` seconds of the first
    item (at most ``max_batch``) and pushes it in one call: one wake-up and one broker round
    trip per batch. It is started on first use in each process (a forked worker gets its own),
    and at interpreter exit what is still waiting is pushed for at most ``exit_timeout``
    seconds. A failing push is logged once for its batch; those items are left to the sweeper.
    """

    def __init__(
        self,
        push_many: Callable[[list], None],
        *,
        name: str,
        linger: float = 0.05,
        max_batch: int = 100,
        exit_timeout: float = 5.0,
    ):
        self._push_many = push_many
        self._name = name
        self._linger = linger
        self._max_batch = max_batch
        self._exit_timeout = exit_timeout
        self._reset()
        # a child forked while a thread held the lock must not inherit it held
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._submitted = 0  # written under the lock by submitters
        self._handled = 0  # written by the pusher thread only
        self._pid: int | None = None

    def submit(self, item) -> None:
        with self._lock:
            if self._pid != os.getpid():
                self._start()
            self._submitted += 1
        self._queue.put(item)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every item submitted so far in this process has been handled (pushed,
        or given up and logged); False if ``timeout`` seconds were not enough."""
        if self._pid != os.getpid():
            return True  # nothing submitted in this process
        target, deadline = self._submitted, time.monotonic() + timeout
        while self._handled < target:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return True

    def _start(self) -> None:
        self._pid = os.getpid()
        threading.Thread(target=self._run, name=self._name, daemon=True).start()
        atexit.register(self.flush, self._exit_timeout)

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            # Sleeping (rather than waiting on the queue) wakes this thread once per batch,
            # not once per item: the request threads keep the GIL meanwhile.
            time.sleep(self._linger)
            with contextlib.suppress(queue.Empty):
                while len(batch) < self._max_batch:
                    batch.append(self._queue.get_nowait())
            try:
                self._push_many(batch)
            except Exception:
                logger.exception(
                    "could not queue %d webhook event(s) (the first: %r); the sweeper will "
                    "queue them again",
                    len(batch),
                    batch[0],
                )
            self._handled += len(batch)


def task_package(func: str, *args, task_name: str) -> str:
    """The signed package ``async_task(func, *args, task_name=...)`` would push, built
    directly: the same keys and values (``tests/test_webhook_pusher.py`` compares them), without
    its human-readable id, option loop and log lines, which cost about half of it (a pusher
    builds one per event). Not for django-q2's ``sync`` option, which runs tasks instead of
    queuing them: see :func:`enqueue_after_commit`."""
    task = {
        "id": uuid.uuid4().hex,
        "name": task_name,
        "func": func,
        "args": args,
        "kwargs": {},
        "started": timezone.now(),
    }
    if Conf.CACHED:
        task["cached"] = Conf.CACHED
    if Conf.ACK_FAILURES:
        task["ack_failure"] = Conf.ACK_FAILURES
    pre_enqueue.send(sender="django_q", task=task)
    return SignedPackage.dumps(task)


def _push_events(event_pks: list) -> None:
    """One signed django-q2 task per event, sent to Redis in one ``RPUSH`` (one by one with
    another broker)."""
    broker = _broker()
    packages = [task_package(PROCESS_TASK, pk, task_name=f"webhook-event-{pk}") for pk in event_pks]
    if isinstance(broker, RedisBroker):
        broker.connection.rpush(broker.list_key, *packages)
    else:
        for package in packages:
            broker.enqueue(package)


pusher = BackgroundPusher(_push_events, name="hub-webhook-pusher")


def _queue_row(event_pk: int) -> None:
    """With the ORM broker: django-q2's queue row for the event, one prepared autocommit INSERT
    (what the broker's ``enqueue()`` writes). A failure (the database locked past its busy
    timeout, say) is logged, not raised: the event is stored and the sweeper queues it."""
    try:
        row = OrmQ(
            key=_broker().list_key or Conf.CLUSTER_NAME,
            payload=task_package(PROCESS_TASK, event_pk, task_name=f"webhook-event-{event_pk}"),
            lock=timezone.now(),
        )
        rows.insert([row])
    except DatabaseError:
        logger.exception("could not queue webhook event %s; the sweeper will", event_pk)


def enqueue_after_commit(event_pk: int) -> None:
    """Queue an event's processing once the transaction that stores it commits, so a worker
    never looks for an event that is not visible yet. With the ORM broker, the queue row is
    written at once, by the caller, in its own autocommit INSERT (two short writes rather than
    one longer transaction: on SQLite, other writers wait for its lock); with Redis, by this
    process's :data:`pusher` thread, after the request has been answered. A lost queue entry
    (process killed in between, broker down) is queued again by the sweeper. With django-q2's
    ``sync`` option, ``async_task()`` runs the task itself, after the commit."""
    if Conf.SYNC:
        transaction.on_commit(lambda: enqueue_processing(event_pk))
    elif queue_is_in_the_database():
        transaction.on_commit(lambda: _queue_row(event_pk))
    else:
        transaction.on_commit(lambda: pusher.submit(event_pk))


def enqueue_processing(event_pk: int) -> None:
    """Queue the processing of one event. A failure here loses nothing: the event row is
    stored, and the sweeper enqueues it again."""
    try:
        async_task(PROCESS_TASK, event_pk, broker=_broker(), task_name=f"webhook-event-{event_pk}")
    except Exception:
        logger.exception("could not enqueue webhook event %s; the sweeper will", event_pk)
