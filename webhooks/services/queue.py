"""Putting processing work on django-q2's queue, through its public API (``async_task()``)
and one broker per process.

``async_task()`` without a broker builds a new one per call (a new Redis connection with the
Redis broker); the hub keeps one per process.

The webhook request path does not queue at all: it hands the stored event's key to this
process's :data:`pusher`, whose thread queues it once the request has been answered (to Redis,
or as django-q2's queue rows with the ORM broker). The partner's 2xx never waits on the queue,
and the row stays the truth: an event whose queue entry is lost (process killed, broker down)
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
from collections.abc import Callable

from django.conf import settings
from django.db import connections, transaction
from django_q.brokers import Broker, get_broker
from django_q.tasks import async_task

logger = logging.getLogger("webhooks.queue")

PROCESS_TASK = "webhooks.tasks.process_event"


@functools.lru_cache(maxsize=1)
def shared_broker():
    """This process's broker (django-q2's ``get_broker()``, built once)."""
    return get_broker()


def queue_is_in_the_database() -> bool:
    """True with django-q2's ORM broker: its task rows live in the same database as events."""
    return "orm" in settings.Q_CLUSTER


class BackgroundPusher:
    """Hands submitted items to ``push_many(items)`` from one thread of this process.

    ``submit()`` is a put on a C-implemented queue: the caller (a web request) does not wait
    for the broker. The thread collects what arrives within ``linger`` seconds of the first
    item (at most ``max_batch``) and hands it to ``push_many`` in one call (one wake-up of the
    thread per batch, whatever the request rate). It is started on first use in each process
    (a forked worker gets its own), and at interpreter exit what is still waiting is pushed
    for at most ``exit_timeout`` seconds. A failing push is logged once for its batch; those
    items are left to the sweeper.
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


class _PackagesKept(Broker):
    """A broker that keeps the packages ``async_task()`` hands it, for another broker's
    ``enqueue()`` to write later (a broker of django-q2's documented ``Broker`` interface)."""

    def __init__(self, target: Broker):
        super().__init__(list_key=target.list_key)
        self.packages: list = []

    def enqueue(self, task):
        self.packages.append(task)
        # what django-q2 logs as the task's queue entry ("Enqueued [hub] …")
        return "(written with its batch)"


def _push_events(event_pks: list) -> None:
    """Queue each event's processing with django-q2's public ``async_task()``. A failure is
    raised to the pusher, which logs it for the batch: the sweeper queues what is left.

    With the ORM broker, the batch's queue rows are written in one short transaction of this
    thread's own database connection: on SQLite, one turn of the database-wide write lock for
    the batch instead of one per event, and none inside a partner's request. ``async_task()``
    builds and signs every package first, outside that transaction, so that the write lock is
    held for the INSERTs alone (the web requests' event INSERTs wait on it): measured, a
    shorter tail for the signed endpoint on SQLite (docs/benchmarks.md)."""
    broker = shared_broker()
    in_database = queue_is_in_the_database()
    # with the ORM broker the packages are kept here, and written below in one transaction
    sink = _PackagesKept(broker) if in_database else broker
    for pk in event_pks:
        _queue_event(pk, sink)
    if not in_database:
        return
    alias = settings.Q_CLUSTER["orm"]
    try:
        with transaction.atomic(using=alias):
            for package in sink.packages:
                broker.enqueue(package)
    except Exception:
        # this thread keeps its connection for the life of the process: after a failed batch
        # (a broken connection after a database restart, or any other failure) it is dropped,
        # whatever Django knows of it, and the next batch opens a new one; failures are rare
        # and a connection is cheap (never inside a caller's transaction)
        if not connections[alias].in_atomic_block:
            connections[alias].close()
        raise


def _queue_event(pk: int, broker) -> None:
    """One event's processing task. No success result is kept (``save=False``): the event
    and its attempts are the record; a failed task is still kept by django-q2."""
    async_task(PROCESS_TASK, pk, broker=broker, task_name=f"webhook-event-{pk}", save=False)


pusher = BackgroundPusher(_push_events, name="hub-webhook-pusher")


def runs_tasks_inline() -> bool:
    """django-q2's ``sync`` option: ``async_task()`` runs the task where it is called."""
    return bool(settings.Q_CLUSTER.get("sync", False))


def enqueue_after_commit(event_pk: int) -> None:
    """Queue an event's processing once the transaction that stores it commits, so a worker
    never looks for an event that is not visible yet.

    With either broker the queue entry is written by this process's :data:`pusher` thread,
    after the request has been answered: the partner's 2xx never waits on the queue — neither
    on Redis (nor a Redis outage) nor, with the ORM broker, on a second write to the database.
    A lost queue entry (process killed in between, broker down) is queued again by the
    sweeper: the event row is the truth. With ``sync``, the task runs on commit, here."""
    if runs_tasks_inline():
        transaction.on_commit(lambda: enqueue_processing(event_pk))
    else:
        transaction.on_commit(lambda: pusher.submit(event_pk))


def enqueue_processing(event_pk: int) -> None:
    """Queue the processing of one event. A failure here loses nothing: the event row is
    stored, and the sweeper enqueues it again."""
    try:
        _queue_event(event_pk, shared_broker())
    except Exception:
        logger.exception("could not enqueue webhook event %s; the sweeper will", event_pk)
