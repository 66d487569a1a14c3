"""The one hierarchy of errors the outbound engine raises.

Callers catch :class:`HubError` for everything, :class:`RetryableError` for "try again later"
(with ``retry_at`` when the partner or the hub knows when), and :class:`PermanentError` for "a
person must look". Messages never contain a secret or a body beyond the partner's short message.
"""

from __future__ import annotations

from datetime import datetime

__all__ = [
    "AuthError",
    "BlockedURLError",
    "CircuitOpenError",
    "ConnectionBusyError",
    "ConnectionUnavailableError",
    "HubError",
    "IdempotencyConflictError",
    "IdempotencyMismatchError",
    "OutcomeUnknownError",
    "PermanentError",
    "QuotaExceededError",
    "RetryableError",
]


class HubError(Exception):
    """Base of every engine error. ``status`` is the partner's HTTP status when there was one."""

    kind = "error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        correlation_id: str = "",
        attempts: int = 0,
    ):
        super().__init__(message)
        self.message = message
        self.status = status
        self.correlation_id = correlation_id
        self.attempts = attempts

    def __str__(self) -> str:
        suffix = f" [correlation id {self.correlation_id}]" if self.correlation_id else ""
        return f"{self.message}{suffix}"


class RetryableError(HubError):
    """Transient: the same call may succeed later. ``retry_at`` is when, if known."""

    kind = "retryable"

    def __init__(self, message: str, *, retry_at: datetime | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_at = retry_at


class OutcomeUnknownError(RetryableError):
    """A non-idempotent call (POST/PATCH without an idempotency key) failed after it may have
    reached the partner: it was not retried, because a retry could apply it twice."""

    kind = "outcome_unknown"


class QuotaExceededError(RetryableError):
    """The partner (429) or the connection's own rate limit refused the call for now."""

    kind = "quota_exceeded"


class CircuitOpenError(RetryableError):
    """The circuit breaker is open: the partner failed repeatedly; no call was made."""

    kind = "circuit_open"


class ConnectionBusyError(RetryableError):
    """Inside a worker: the connection already has as many calls in flight as its share of the
    workers allows (its bulkhead); no call was made, and the work is retried shortly, without
    counting as a failed attempt."""

    kind = "connection_busy"


class PermanentError(HubError):
    """Not transient: retrying the same call gives the same answer. ``partner_message`` is the
    partner's own short explanation (e.g. a validation error), when it gave one."""

    kind = "permanent"

    def __init__(self, message: str, *, partner_message: str = "", **kwargs):
        super().__init__(message, **kwargs)
        self.partner_message = partner_message


class AuthError(PermanentError):
    """401/403, or a connection that needs its account reconnected. ``hint`` says what to check."""

    kind = "auth"

    def __init__(self, message: str, *, hint: str = "", **kwargs):
        super().__init__(message, **kwargs)
        self.hint = hint


class BlockedURLError(PermanentError):
    """The URL was refused by the SSRF guard (address, scheme, or a redirect to another host)."""

    kind = "blocked_url"


class ConnectionUnavailableError(PermanentError):
    """The connection does not exist, or is paused or disabled."""

    kind = "connection_unavailable"


class IdempotencyConflictError(HubError):
    """A call with the same idempotency key is still in flight."""

    kind = "idempotency_conflict"


class IdempotencyMismatchError(PermanentError):
    """The idempotency key was already used for a different request."""

    kind = "idempotency_mismatch"
