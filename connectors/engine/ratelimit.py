"""Per-connection token bucket, shared by every process and machine.

``rate_limit_requests`` tokens per ``rate_limit_window_seconds``, refilled continuously. With
Redis (``REDIS_URL``) the bucket is one Redis hash updated by a Lua script (atomic on the server);
without it, one ``RateLimitBucket`` row updated under a row lock (``select_for_update``; on SQLite
the IMMEDIATE transaction serialises writers the same way). Either way, two processes can never
spend the same token.
"""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction

from connectors.engine.errors import QuotaExceededError
from connectors.models import RateLimitBucket

__all__ = ["acquire", "take_token"]

# The longest a call waits for a token before failing with retry_at.
MAX_WAIT_SECONDS = 2.0

_LUA_TAKE = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local max_wait = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens < 1 then
  wait = (1 - tokens) / rate
end
if wait <= max_wait then
  tokens = tokens - 1
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now)
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 60)
return tostring(wait)
"""


@functools.lru_cache(maxsize=4)
def _redis_script(url: str):
    import redis

    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    return client.register_script(_LUA_TAKE)


def _take_redis(connection, capacity: int, rate: float, now: float, max_wait: float) -> float:
    script = _redis_script(settings.REDIS_URL)
    prefix = settings.CACHES["default"].get("KEY_PREFIX", "hub")
    key = f"{prefix}:ratelimit:{connection.pk}"
    return float(script(keys=[key], args=[capacity, rate, now, max_wait]))


def _take_database(connection, capacity: int, rate: float, now: float, max_wait: float) -> float:
    with transaction.atomic():
        bucket, created = RateLimitBucket.objects.select_for_update().get_or_create(
            connection=connection, defaults={"tokens": capacity - 1, "updated_at": now}
        )
        if created:
            return 0.0
        tokens = min(capacity, bucket.tokens + max(0.0, now - bucket.updated_at) * rate)
        wait = 0.0 if tokens >= 1 else (1 - tokens) / rate
        if wait <= max_wait:
            tokens -= 1
        bucket.tokens, bucket.updated_at = tokens, now
        bucket.save(update_fields=["tokens", "updated_at"])
        return wait


def take_token(connection, max_wait: float = 0.0) -> float:
    """Reserve one token and return the seconds to wait before using it (0: use it now).

    When the wait would exceed ``max_wait`` nothing is reserved and the wait is returned, so the
    caller can fail with a retry time. A reservation may take the bucket below zero: later
    callers then queue behind it instead of stampeding when the window refills.
    """
    capacity = connection.rate_limit_requests
    rate = capacity / connection.rate_limit_window_seconds
    now = time.time()
    if settings.REDIS_URL:
        return _take_redis(connection, capacity, rate, now, max_wait)
    return _take_database(connection, capacity, rate, now, max_wait)


def acquire(connection, *, max_wait: float = MAX_WAIT_SECONDS, correlation_id: str = "") -> None:
    """Wait (at most ``max_wait`` seconds) for a token, or raise ``QuotaExceededError``."""
    if not connection.rate_limit_requests:
        return
    wait = take_token(connection, max_wait)
    if wait <= 0:
        return
    if wait > max_wait:
        retry_at = datetime.now(UTC) + timedelta(seconds=wait)
        raise QuotaExceededError(
            f"Rate limit of connection {connection.slug!r} reached "
            f"({connection.rate_limit_requests} per {connection.rate_limit_window_seconds}s); "
            f"next slot in {wait:.1f}s.",
            retry_at=retry_at,
            correlation_id=correlation_id,
        )
    time.sleep(wait)
