"""The hub's Python API for site code: ``from connectors import hub``.

    response = hub.call("crm", "POST", "/contacts", json={...}, idempotency_key="order-42")

See ``docs/python-api.md``.
"""

from connectors.correlation import correlation_scope, current_correlation_id
from connectors.engine.client import HubResponse, call
from connectors.engine.errors import (
    AuthError,
    BlockedURLError,
    CircuitOpenError,
    ConnectionUnavailableError,
    HubError,
    IdempotencyConflictError,
    IdempotencyMismatchError,
    OutcomeUnknownError,
    PermanentError,
    QuotaExceededError,
    RetryableError,
)

__all__ = [
    "AuthError",
    "BlockedURLError",
    "CircuitOpenError",
    "ConnectionUnavailableError",
    "HubError",
    "HubResponse",
    "IdempotencyConflictError",
    "IdempotencyMismatchError",
    "OutcomeUnknownError",
    "PermanentError",
    "QuotaExceededError",
    "RetryableError",
    "call",
    "correlation_scope",
    "current_correlation_id",
]
