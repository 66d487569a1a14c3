"""Each connection's share of the workers (a bulkhead), shared by every process and machine.

Workers are shared by every connection: without a limit, a partner that hangs until its read
timeout holds a worker for each of its events while every other connection's events wait.
The limit applies, inside a worker task, when the workers are contended or the partner is slow:

- *contended*: another connection's work also started an attempt in the last
  ``ACTIVE_SECONDS``. Each connection then gets its share from its first attempt, before any
  of them is seen slow: a partner that starts hanging holds no more workers than its share
  while its first attempts wait for their read timeout. A hub with one busy connection keeps
  every worker for it;
- *slow*: once an attempt to it took longer than ``HUB_BULKHEAD_SLOW_SECONDS`` (or timed out),
  the connection counts as slow for a minute, each slow attempt renewing that.

The connections seen active are one cache entry (connection → when it last started an
attempt), read with the slow flag in one round trip and written back at most every
``ACTIVE_REFRESH_SECONDS`` per connection; two processes writing it at once may drop an entry,
which its connection's next attempt puts back.

When the limit applies, an attempt first takes one of its connection's slots (at most
``Connection.max_concurrent_calls``, by default ``HUB_CONNECTION_CONCURRENCY``: half of a
cluster's workers); with none free, no call is made. A partner that answers in time frees a
slot within its answer time, so the attempt first waits for one up to
``WAIT_FOR_SLOT_SECONDS``; a slow one's slots do not, so it does not wait. A slot held longer
than a slow attempt takes marks its partner slow at once, before that attempt ends (a block of
calls that holds one that long counts too). The call then raises ``ConnectionBusyError``
with a ``retry_at``: the work is retried then, without counting as a failed attempt, and the
worker moves on to other work. The more of a slow connection's work was refused lately, the
later it comes back, so that a thousand events waiting for a hanging partner do not keep the
workers busy refusing them.

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
import time
import uuid
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta

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
]

SLOW_FOR_SECONDS = 60  # how long one slow attempt marks its connection slow
ACTIVE_SECONDS = 5  # how long a connection counts as active after it started an attempt
ACTIVE_REFRESH_SECONDS = 1  # how often a connection renews its entry in the active ones
ACTIVE_KEY = "hub:bulkhead:active"
WAIT_FOR_SLOT_SECONDS = 0.5  # the longest an attempt waits for a slot of a connection not slow
WAIT_STEP_SECONDS = 0.05
RETRIES_PER_SLOT_PER_SECOND = 2

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


def _retry_in(connection, limit: int, *, slow: bool) -> float:
    """When refused work comes back: ``HUB_BULKHEAD_RETRY_SECONDS``; for a slow partner,
    later as more of the connection's work was refused lately (counted for a minute on Redis;
    the database cache's ``incr`` keeps the count five minutes from the last refusal), so that
    it comes back at about ``RETRIES_PER_SLOT_PER_SECOND`` per slot whatever the number
    waiting (jittered)."""
    jitter = random.uniform(0.75, 1.25)  # noqa: S311
    if not slow:  # its slots free up as it answers: back soon
        return settings.HUB_BULKHEAD_RETRY_SECONDS * jitter
    key = f"hub:bulkhead:refused:{connection.pk}"
    try:
        refused = cache.incr(key)  # one round trip on Redis (the database cache reads, writes)
    except ValueError:  # none refused lately
        refused = 1
        cache.set(key, refused, timeout=SLOW_FOR_SECONDS)
    spread = min(SLOW_FOR_SECONDS, refused / (RETRIES_PER_SLOT_PER_SECOND * limit))
    return max(settings.HUB_BULKHEAD_RETRY_SECONDS, spread) * jitter


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
    if remaining is None or limit <= 0:
        return None
    held = (_held.get() or {}).get(connection.pk)
    if held is not None:
        cache.touch(held.key, _lease(connection, remaining))
        return None
    keys = [_slot_key(connection, n) for n in range(limit)]
    state = cache.get_many([_slow_key(connection), ACTIVE_KEY, *keys])  # one round trip
    contended = _note_active(connection, state.get(ACTIVE_KEY))
    slow = bool(state.get(_slow_key(connection)))
    if not (contended or slow):
        return None
    lease = _lease(connection, remaining)
    # the slots of a partner that answers in time free up within its answer time: wait for one
    # briefly rather than send the work away; a slow partner's do not, so refuse at once
    deadline = time.monotonic() + (0.0 if slow else min(WAIT_FOR_SLOT_SECONDS, remaining / 4))
    while True:
        slot = _take(keys, state, lease)
        if slot is not None:
            return slot
        if time.monotonic() >= deadline or not _worth_waiting(connection, keys, state):
            break
        time.sleep(WAIT_STEP_SECONDS)
        state = cache.get_many(keys)
    raise ConnectionBusyError(
        f"{connection.slug}: {limit} call(s) already in flight, its share of the workers "
        "(max concurrent calls); this work waits and is retried shortly",
        retry_at=datetime.now(UTC) + timedelta(seconds=_retry_in(connection, limit, slow=slow)),
    )


def _slot_key(connection, n: int) -> str:
    return f"hub:bulkhead:{connection.pk}:{n}"


def _take(keys: list[str], taken: dict, lease: int) -> Slot | None:
    """One of the slots not seen taken (none is written to when every slot is seen taken)."""
    token = f"{time.time():.3f} {uuid.uuid4().hex}"  # when it was taken, and whose it is
    free = [key for key in keys if key not in taken]
    random.shuffle(free)  # spreads the processes over the slots
    for key in free:
        if cache.add(key, token, timeout=lease):
            return Slot(key, token)
    return None


def _worth_waiting(connection, keys: list[str], taken: dict) -> bool:
    """Whether a slot of the connection may free up within the wait: not when every holder has
    held its slot longer than the wait already. One held longer than a slow attempt takes
    marks the connection slow at once: its partner is slow before that attempt even ends (it
    may hang until its read timeout)."""
    now = time.time()
    ages = []
    for token in (taken[key] for key in keys if key in taken):
        try:
            ages.append(now - float(str(token).split(" ", 1)[0]))
        except ValueError:  # a slot taken by a version whose token held no time
            continue
    if any(age >= _slow_threshold(connection) for age in ages):
        cache.set(_slow_key(connection), 1, timeout=SLOW_FOR_SECONDS)
        return False
    return not ages or min(ages) < WAIT_FOR_SLOT_SECONDS


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


def _note_active(connection, active) -> bool:
    """Record that ``connection`` starts an attempt; whether another one did recently."""
    now = time.time()
    active = {pk: at for pk, at in (active or {}).items() if now - at < ACTIVE_SECONDS}
    if now - active.get(connection.pk, 0) >= ACTIVE_REFRESH_SECONDS:
        active[connection.pk] = now
        cache.set(ACTIVE_KEY, active, timeout=ACTIVE_SECONDS)
    return any(pk != connection.pk for pk in active)


def _slow_threshold(connection) -> float:
    return min(settings.HUB_BULKHEAD_SLOW_SECONDS, 0.9 * connection.read_timeout)


def observe(connection, seconds: float) -> None:
    """After each attempt: one that took longer than ``HUB_BULKHEAD_SLOW_SECONDS`` marks the
    connection slow (its limit applies) for the next minute."""
    if seconds >= _slow_threshold(connection):
        cache.set(_slow_key(connection), 1, timeout=SLOW_FOR_SECONDS)


def release(slot: Slot | None) -> None:
    # only the holder gives a slot back (one whose lease ran out may belong to another now)
    if slot is not None and cache.get(slot.key) == slot.token:
        cache.delete(slot.key)
