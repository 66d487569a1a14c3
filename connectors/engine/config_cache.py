"""Process-local cache of connections and decrypted secrets, invalidated across processes.

Looking a connection and its current credential up costs two or three queries per call, more
than the call itself against a fast partner. The engine keeps them in memory, keyed by a
*configuration generation* held in the shared Django cache: every save or delete of a
connection or credential (signals below) writes a new generation, and every call reads it (one
cache read, shared with the circuit breaker's), so a replaced or revoked secret is dropped by
every process on its next call. Entries also expire after ``MAX_AGE`` seconds, and a credential
is never served past its own ``expires_at``.

Changes made with ``QuerySet.update()`` send no signal: call :func:`bump_generation` after them
(the engine's own ``update()`` calls only touch fields it also sets on the cached object).
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.core.cache import cache
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

__all__ = [
    "GENERATION_KEY",
    "bump_generation",
    "cached_connection",
    "cached_secret",
    "cached_value",
    "current_generation",
    "forget_shared_state",
    "shared_state",
    "sync_generation",
    "watch",
]

GENERATION_KEY = "hub:config-generation"
MAX_AGE = 30.0


@dataclass
class _Entry:
    value: object
    stored_at: float
    expires_at: datetime | None = None


_lock = threading.Lock()
_state: dict[str, object] = {"generation": None, "read_at": 0.0}
_connections: dict[str, _Entry] = {}
_secrets: dict[tuple[int, str], _Entry] = {}
_values: dict[tuple[str, object], _Entry] = {}


_snapshots: dict[str, tuple[float, dict]] = {}


def shared_state(slug: str, keys: list[str], max_age: float) -> dict:
    """The shared keys of one connection (the generation and the breaker's state), read from
    the cache at most once per ``max_age`` seconds per process. A process's own changes drop
    the snapshot at once (:func:`forget_shared_state`, :func:`bump_generation`); changes made
    by other processes are seen within ``max_age``."""
    now = time.monotonic()
    snapshot = _snapshots.get(slug)
    if snapshot is not None and now - snapshot[0] < max_age:
        return dict(snapshot[1])
    values = cache.get_many([GENERATION_KEY, *keys])
    sync_generation(values.pop(GENERATION_KEY, None))
    _snapshots[slug] = (now, values)
    return dict(values)


def forget_shared_state(slug: str | None = None) -> None:
    if slug is None:
        _snapshots.clear()
    else:
        _snapshots.pop(slug, None)


def bump_generation(**kwargs) -> None:
    """Tell every process that connections or credentials changed (this one at once)."""
    value = uuid.uuid4().hex
    cache.set(GENERATION_KEY, value, timeout=None)
    _snapshots.clear()
    sync_generation(value)


def sync_generation(current: str | None) -> None:
    """Drop every entry if the shared generation is not the one they were read under."""
    if current is None:
        current = uuid.uuid4().hex
        if not cache.add(GENERATION_KEY, current, timeout=None):
            current = cache.get(GENERATION_KEY)
    with _lock:
        if _state["generation"] != current:
            _connections.clear()
            _secrets.clear()
            _values.clear()
            _state["generation"] = current


def _fresh(entry: _Entry | None) -> bool:
    if entry is None or time.monotonic() - entry.stored_at > MAX_AGE:
        return False
    return entry.expires_at is None or entry.expires_at > timezone.now()


def cached_connection(slug: str, load):
    entry = _connections.get(slug)
    if _fresh(entry):
        return entry.value
    value = load(slug)
    _connections[slug] = _Entry(value, time.monotonic())
    return value


def cached_secret(connection_id: int, kind: str, load):
    """``load()`` returns ``(secret, expires_at)`` or raises; the secret is cached."""
    key = (connection_id, kind)
    entry = _secrets.get(key)
    if _fresh(entry):
        return entry.value
    secret, expires_at = load()
    _secrets[key] = _Entry(secret, time.monotonic(), expires_at)
    return secret


def current_generation(max_age: float = 0.0) -> str | None:
    """Read the shared generation and drop stale entries (for callers outside the engine).

    With ``max_age``, a generation read less than that many seconds ago by this process is
    trusted without asking the cache again: changes made by other processes then take up to
    ``max_age`` seconds to be seen here (changes made in this process are seen at once).
    """
    now = time.monotonic()
    if max_age and now - _state["read_at"] < max_age and _state["generation"] is not None:
        return _state["generation"]
    value = cache.get(GENERATION_KEY)
    sync_generation(value)
    _state["read_at"] = now
    return _state["generation"]


def cached_value(namespace: str, key, load, *, expires_at: datetime | None = None):
    """Any other configuration derived from connections (webhook endpoints and their secrets):
    ``load()`` returns the value; cached like connections. Call :func:`current_generation`
    (or the engine's combined read) first."""
    entry = _values.get((namespace, key))
    if _fresh(entry):
        return entry.value
    value = load()
    _values[(namespace, key)] = _Entry(value, time.monotonic(), expires_at)
    return value


def watch(*models) -> None:
    """Bump the generation whenever rows of ``models`` are saved or deleted."""
    for model in models:
        post_save.connect(bump_generation, sender=model, dispatch_uid=f"hub.gen.save.{model}")
        post_delete.connect(bump_generation, sender=model, dispatch_uid=f"hub.gen.del.{model}")


def connect_signals() -> None:
    from connectors.models import Connection, Credential

    watch(Connection, Credential)
