"""Per-connection circuit breaker, shared by every process through the Django cache.

Closed: calls go through and consecutive transient failures are counted. At the connection's
threshold the circuit opens: for the cooldown no call is made (``CircuitOpenError`` with
``retry_at``). After it, the first caller to win ``cache.add`` on the probe key makes one probe
call; the others still get ``CircuitOpenError``. A successful probe closes the circuit, a failed
one opens it for another cooldown.

The state lives in the cache (Redis in production, the database cache by default) so that every
worker sees it. ``cache.incr`` on the database cache is not atomic, so under heavy concurrency a
failure or two may be miscounted there: a breaker is a heuristic and tolerates that.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from django.core.cache import cache
from django.utils.formats import date_format
from django.utils.timezone import localtime
from django.utils.translation import gettext

from connectors.engine.config_cache import forget_shared_state
from connectors.engine.errors import CircuitOpenError

__all__ = ["Breaker", "circuit_state", "open_windows", "reset", "state_keys"]


def _keys(connection) -> tuple[str, str, str]:
    # Keyed by slug, which callers know before loading the connection: the engine reads these
    # together with the configuration generation in one cache round trip.
    base = f"hub:circuit:{connection.slug}"
    return f"{base}:failures", f"{base}:open_until", f"{base}:probe"


def state_keys(slug: str) -> list[str]:
    """The keys :meth:`Breaker.before` reads, for a caller that prefetches them."""
    return [f"hub:circuit:{slug}:failures", f"hub:circuit:{slug}:open_until"]


@dataclass
class Breaker:
    """The breaker's view for one call: ``before()`` then ``success()`` or ``failure()``."""

    connection: object
    is_probe: bool = False
    had_failures: bool = False

    def before(self, correlation_id: str = "", prefetched: dict | None = None) -> None:
        failures_key, open_key, probe_key = _keys(self.connection)
        state = prefetched if prefetched is not None else cache.get_many([failures_key, open_key])
        self.had_failures = bool(state.get(failures_key))
        open_until = state.get(open_key)
        if open_until is None:
            return
        now = time.time()
        if now < open_until:
            raise self._open_error(open_until, correlation_id)
        # Cooldown over: one probe at a time decides.
        probe_ttl = int(self.connection.connect_timeout + self.connection.read_timeout) + 5
        if cache.add(probe_key, 1, timeout=probe_ttl):
            self.is_probe = True
            return
        raise self._open_error(now + 1, correlation_id, probing=True)

    def success(self) -> None:
        if self.is_probe or self.had_failures:
            cache.delete_many(list(_keys(self.connection)))
            forget_shared_state(self.connection.slug)

    def failure(self) -> None:
        failures_key, open_key, probe_key = _keys(self.connection)
        cooldown = self.connection.circuit_cooldown_seconds
        if not cache.add(failures_key, 1, timeout=cooldown * 10 + 3600):
            try:
                failures = cache.incr(failures_key)
            except ValueError:  # expired between add and incr
                cache.add(failures_key, 1, timeout=cooldown * 10 + 3600)
                failures = 1
        else:
            failures = 1
        if self.is_probe or failures >= self.connection.circuit_failure_threshold:
            cache.set(open_key, time.time() + cooldown, timeout=cooldown + 3600)
            cache.delete(probe_key)
        forget_shared_state(self.connection.slug)

    def _open_error(self, until: float, correlation_id: str, probing: bool = False):
        retry_at = datetime.fromtimestamp(until, UTC)
        detail = "a probe call is deciding" if probing else f"until {retry_at:%H:%M:%S} UTC"
        return CircuitOpenError(
            f"Circuit open for connection {self.connection.slug!r} after repeated failures "
            f"({detail}); no call was made.",
            retry_at=retry_at,
            correlation_id=correlation_id,
        )


def circuit_state(connection) -> str:
    """Human-readable state for the console."""
    failures_key, open_key, _ = _keys(connection)
    state = cache.get_many([failures_key, open_key])
    open_until = state.get(open_key)
    failures = state.get(failures_key) or 0
    if open_until is not None:
        if time.time() < open_until:
            until = datetime.fromtimestamp(open_until, UTC)
            return gettext("open until %(time)s (%(n)s failures)") % {
                "time": date_format(localtime(until), "DATETIME_FORMAT"),
                "n": failures,
            }
        return gettext("half-open: the next call is a probe")
    if failures:
        return gettext("closed (%(n)s consecutive failure(s))") % {"n": failures}
    return gettext("closed")


def open_windows(connections) -> dict[int, tuple[datetime, datetime]]:
    """``(opened_at, open_until)`` of each connection whose circuit is open or half-open, by
    primary key, in one cache round trip: what monitoring reports ("circuit open since
    14:02")."""
    keys = {_keys(c)[1]: c for c in connections}
    found = cache.get_many(list(keys))
    out = {}
    for key, open_until in found.items():
        connection = keys[key]
        opened = open_until - connection.circuit_cooldown_seconds
        out[connection.pk] = (
            datetime.fromtimestamp(opened, UTC),
            datetime.fromtimestamp(open_until, UTC),
        )
    return out


def reset(connection) -> None:
    """Close the circuit by hand (the console's action, and tests)."""
    cache.delete_many(list(_keys(connection)))
    forget_shared_state(connection.slug)
