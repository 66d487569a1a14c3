"""Retry policy: what is transient, how long to wait, and what the partner's headers say."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

__all__ = [
    "IDEMPOTENT_METHODS",
    "RETRYABLE_STATUSES",
    "backoff_delay",
    "parse_quota",
    "parse_quota_limit",
    "parse_retry_after",
]

# RFC 9110 §9.2.2: repeating these has the same effect as sending them once.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
# Transient by definition: timeouts, too early, too many requests, and gateway-side failures.
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
# A Retry-After further out than this is treated as this (a broken header must not park work
# for a year); the caller still gets retry_at and can reschedule.
MAX_RETRY_AFTER = timedelta(days=1)


def backoff_delay(attempt: int, *, base: float, cap: float, rng: random.Random | None = None):
    """Exponential backoff with full jitter: random(0, min(cap, base * 2**attempt)).

    ``attempt`` is the number of attempts already made (1 after the first). Full jitter spreads
    clients that failed together, so they do not retry together (AWS Architecture Blog,
    "Exponential Backoff And Jitter", 2015).
    """
    ceiling = min(cap, base * (2 ** max(0, attempt)))
    return (rng or random).uniform(0, ceiling)  # jitter, not cryptography


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date (RFC 9110
    §10.2.3). None when absent or unparseable; never negative; capped at one day."""
    if not value:
        return None
    value = value.strip()
    now = now or datetime.now(UTC)
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    return max(0.0, min(seconds, MAX_RETRY_AFTER.total_seconds()))


_RATELIMIT_FIELD = re.compile(r"(?:^|[;,\s])r\s*=\s*(\d+)")
_RATELIMIT_RESET = re.compile(r"(?:^|[;,\s])t\s*=\s*(\d+)")


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip().split(",")[0].split(";")[0])
    except ValueError:
        return None


def parse_quota(headers, *, now: datetime | None = None) -> tuple[int | None, datetime | None]:
    """Requests left and reset time from the partner's headers, if it sends any.

    Understands ``X-RateLimit-Remaining`` / ``X-RateLimit-Reset`` (seconds or epoch), the IETF
    draft's ``RateLimit-Remaining`` / ``RateLimit-Reset`` and its structured ``RateLimit`` field
    (``"default";r=50;t=30``).
    """
    now = now or datetime.now(UTC)
    remaining = _int(headers.get("X-RateLimit-Remaining"))
    reset = _int(headers.get("X-RateLimit-Reset"))
    if remaining is None:
        remaining = _int(headers.get("RateLimit-Remaining"))
        reset = _int(headers.get("RateLimit-Reset")) if reset is None else reset
    structured = headers.get("RateLimit")
    if remaining is None and structured:
        match = _RATELIMIT_FIELD.search(structured)
        remaining = int(match.group(1)) if match else None
        match = _RATELIMIT_RESET.search(structured)
        reset = int(match.group(1)) if match else reset
    reset_at = None
    if reset is not None:
        # Large numbers are epoch seconds (GitHub); small ones are seconds from now (IETF).
        if reset > 1_000_000_000:
            reset_at = datetime.fromtimestamp(reset, UTC)
        else:
            reset_at = now + timedelta(seconds=reset)
    return remaining, reset_at


_POLICY_QUOTA = re.compile(r"(?:^|[;,\s])q\s*=\s*(\d+)")


def parse_quota_limit(headers) -> int | None:
    """The size of the partner's quota window, if it says: ``X-RateLimit-Limit``,
    ``RateLimit-Limit``, or the IETF ``RateLimit-Policy`` field (``"default";q=100;w=60``, or the
    older draft's ``100;w=60``). With the remaining count it gives the share of the quota used."""
    limit = _int(headers.get("X-RateLimit-Limit"))
    if limit is None:
        limit = _int(headers.get("RateLimit-Limit"))
    policy = headers.get("RateLimit-Policy")
    if limit is None and policy:
        match = _POLICY_QUOTA.search(policy)
        limit = int(match.group(1)) if match else _int(policy)
    return limit if limit and limit > 0 else None
