"""'Test connection': one real call to the connection's health path, explained in words."""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

from connectors.engine.client import call
from connectors.engine.errors import (
    AuthError,
    BlockedURLError,
    CircuitOpenError,
    HubError,
    QuotaExceededError,
    RetryableError,
)
from connectors.models import ApiCall, Connection, ErrorKind

__all__ = ["HealthResult", "check_connection"]


@dataclass
class HealthResult:
    ok: bool
    status: int | None
    latency_ms: int
    meaning: str
    correlation_id: str = ""

    def summary(self) -> str:
        status = self.status if self.status is not None else _("no answer")
        return f"{status}, {self.latency_ms} ms: {self.meaning}"


MEANINGS = {
    401: _("the key or token is wrong, expired or revoked: replace the credential"),
    403: _("the credential works but lacks a scope or permission for this endpoint"),
    404: _("the health path does not exist at the partner: check the base URL and health path"),
    429: _("the partner's quota is exhausted for now: wait, or lower the connection's rate limit"),
}


def _explain_error(error: HubError, connection: Connection) -> str:
    last = ApiCall.objects.filter(
        connection=connection, correlation_id=error.correlation_id
    ).first()
    kind = last.error_kind if last else ""
    if isinstance(error, BlockedURLError):
        return _("the URL is refused by the SSRF guard: %(message)s") % {"message": error.message}
    if isinstance(error, CircuitOpenError):
        return _("the circuit breaker is open after repeated failures; it will probe again soon")
    if isinstance(error, QuotaExceededError) and error.status is None:
        return _("the connection's own rate limit is reached; try again in a moment")
    if error.status in MEANINGS:
        return str(MEANINGS[error.status])
    if kind == ErrorKind.TIMEOUT:
        return _(
            "timeout: the partner did not answer in time; check the base URL, the network, or "
            "raise the read timeout"
        )
    if kind == ErrorKind.CONNECTION:
        return _(
            "cannot connect (DNS or refused): check the base URL's host and port, and the "
            "network between the hub and the partner"
        )
    if isinstance(error, AuthError):
        return f"{error.message}. {error.hint}"
    if isinstance(error, RetryableError) and error.status:
        return _("the partner is failing (%(status)s); this is on their side, retry later") % {
            "status": error.status
        }
    return error.message


def check_connection(connection: Connection) -> HealthResult:
    """GET the health path once (no retries, the breaker bypassed) and say what it means."""
    if not connection.health_path:
        return HealthResult(False, None, 0, _("no health path is set on this connection"))
    started = time.monotonic()
    try:
        response = call(
            connection,
            "GET",
            connection.health_path,
            max_attempts=1,
            deadline=connection.connect_timeout + connection.read_timeout + 1,
            use_breaker=False,
        )
    except HubError as error:
        latency = int((time.monotonic() - started) * 1000)
        return HealthResult(
            False, error.status, latency, _explain_error(error, connection), error.correlation_id
        )
    latency = int((time.monotonic() - started) * 1000)
    meaning = _("the partner answered and accepted the credential")
    if response.status >= 300:
        meaning = _("the partner answered with a redirect (%(status)s); check the base URL") % {
            "status": response.status
        }
    return HealthResult(
        response.status < 300, response.status, latency, meaning, response.correlation_id
    )
