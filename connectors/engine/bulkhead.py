"""Each connection's share of the workers (a bulkhead), shared by every process and machine.

Workers are shared by every connection: without a limit, a partner that hangs until its read
timeout holds a worker for each of its events while every other connection's events wait.
The limit applies while the partner is slow: once an attempt to it took longer than
``HUB_BULKHEAD_SLOW_SECONDS`` (or timed out), the connection counts as slow for a minute, each
slow attempt renewing that. A partner that answers in time is never limited (a hub with one
busy connection keeps every worker for it). While it is slow, inside a worker task, an attempt
first takes one of its connection's slots (at most ``Connection.max_concurrent_calls``, by
default ``HUB_CONNECTION_CONCURRENCY``: half of a cluster's workers); with none free, no call
is made, and the call raises
``ConnectionBusyError`` with a short ``retry_at``: the event is retried then, without counting
as a failed attempt, and the worker moves on to other work.

A slot is a cache key taken with ``cache.add`` (atomic on Redis and on the database cache) and
given back when the attempt ends; its lease is the longest an attempt can take (the
connection's connect and read timeouts, plus a margin), so a worker killed in a call frees its
slot seconds later.

A block of work that makes several calls (a flow run: its lookup, then its create) holds one
slot for the whole block with :func:`hold`, taken before the block starts (a busy connection
refuses the run before anything is written or sent); each call in it renews the slot's lease
for its own attempt and takes no second slot. Calls made outside a worker (the site's own
code) are not limited: they hold no worker.
"""

from __future__ import annotations

import math
import random
import uuid
from contextlib import contextmanager
from contextvars import ContextVar

from django.conf import settings
from django.core.cache import cache

from connectors.engine import budget
from connectors.engine.errors import ConnectionBusyError

__all__ = [
    "Slot",
    "acquire",
    "default_limit",
    "hold",
    "is_slow",
    "limit_for",
    "observe",
    "release",
    "retry_seconds",
]

SLOW_FOR_SECONDS = 60  # how long one slow attempt marks its connection slow

_held: ContextVar[dict | None] = ContextVar("hub_bulkhead_held", default=None)  # pk → Slot


def default_limit() -> int:
    configured = settings.HUB_CONNECTION_CONCURRENCY
    if configured is not None:
        return configured
    return max(1, math.ceil(int(settings.Q_CLUSTER.get("workers") or 1) / 2))


def limit_for(connection) -> int:
    """The connection's limit; 0 means none."""
    own = connection.max_concurrent_calls
    return default_limit() if own is None else own


def retry_seconds() -> float:
    """When work refused for a busy connection comes back (jittered, so waiting events spread)."""
    return settings.HUB_BULKHEAD_RETRY_SECONDS * random.uniform(0.75, 1.25)  # noqa: S311


class Slot:
    def __init__(self, key: str, token: str):
        self.key, self.token = key, token


def _lease(connection, remaining: float) -> int:
    longest = connection.connect_timeout + connection.read_timeout  # one attempt, at most
    return max(1, math.ceil(min(remaining, longest)) + 5)


def acquire(connection) -> Slot | None:
    """Take a slot of the connection for one attempt; None when no limit applies (outside a
    worker, a limit of 0, or a slot already held by the block this call is part of: its lease
    is renewed instead). Raises ``ConnectionBusyError`` when every slot is taken."""
    remaining = budget.remaining()
    limit = limit_for(connection)
    if remaining is None or limit <= 0 or not is_slow(connection):
        return None
    held = (_held.get() or {}).get(connection.pk)
    if held is not None:
        cache.touch(held.key, _lease(connection, remaining))
        return None
    token = uuid.uuid4().hex
    lease = _lease(connection, remaining)
    first = random.randrange(limit)  # noqa: S311 - spreads the processes over the slots
    for step in range(limit):
        key = f"hub:bulkhead:{connection.pk}:{(first + step) % limit}"
        if cache.add(key, token, timeout=lease):
            return Slot(key, token)
    raise ConnectionBusyError(
        f"{connection.slug}: {limit} call(s) already in flight, its share of the workers "
        "(max concurrent calls); this work waits and is retried shortly"
    )


@contextmanager
def hold(connection):
    """Hold one slot of ``connection`` for a block of several calls (see the module's text);
    raises ``ConnectionBusyError`` before the block when none is free."""
    held = _held.get() or {}
    if connection.pk in held:
        yield
        return
    slot = acquire(connection)
    token = _held.set({**held, connection.pk: slot}) if slot else None
    try:
        yield
    finally:
        if token is not None:
            _held.reset(token)
        release(slot)


def _slow_key(connection) -> str:
    return f"hub:bulkhead:slow:{connection.pk}"


def is_slow(connection) -> bool:
    return bool(cache.get(_slow_key(connection)))


def observe(connection, seconds: float) -> None:
    """After each attempt: one that took longer than ``HUB_BULKHEAD_SLOW_SECONDS`` marks the
    connection slow (its limit applies) for the next minute."""
    if seconds >= min(settings.HUB_BULKHEAD_SLOW_SECONDS, 0.9 * connection.read_timeout):
        cache.set(_slow_key(connection), 1, timeout=SLOW_FOR_SECONDS)


def release(slot: Slot | None) -> None:
    # only the holder gives a slot back (one whose lease ran out may belong to another now)
    if slot is not None and cache.get(slot.key) == slot.token:
        cache.delete(slot.key)
