"""Background tasks of the connectors app (run by django-q2). Each is a thin wrapper around a
service function; schedules are created by :func:`ensure_schedules` after ``migrate``."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.utils import timezone

from connectors.engine import idempotency
from connectors.models import ApiCall, Connection
from connectors.periodic import every
from connectors.retention import Budget, delete_in_batches, per_connection_cutoffs

logger = logging.getLogger(__name__)

__all__ = [
    "ensure_schedules",
    "purge_api_calls",
    "purge_idempotency_records",
    "refresh_expiring_tokens",
]


def purge_api_calls(batch_size: int | None = None) -> int:
    """Delete call log rows older than their connection's retention (GDPR), at most a pass's
    budget of rows; returns the count."""
    budget = Budget()
    total = sum(
        delete_in_batches(  # the index on (connection, created_at) finds them
            ApiCall.objects.filter(connection_id=connection_id, created_at__lt=cutoff),
            batch_size,
            budget=budget,
        )
        for connection_id, cutoff in per_connection_cutoffs()
    )
    logger.info("purged %d api call rows", total)
    return total


def purge_idempotency_records() -> int:
    deleted = idempotency.purge_expired()
    logger.info("purged %d expired idempotency records", deleted)
    return deleted


def refresh_expiring_tokens(within_seconds: int = 600) -> dict[str, int]:
    """Refresh the OAuth access tokens that expire soon, so a quiet connection does not go
    stale ("ça marchait hier"). Each refresh takes the connection's lock like any other."""
    from connectors.choices import ConnectionStatus, CredentialKind
    from connectors.engine.errors import HubError
    from connectors.models import Credential, OAuthApp
    from connectors.oauth.tokens import refresh_access_token

    soon = timezone.now() + timedelta(seconds=within_seconds)
    connection_ids = set(
        Credential.objects.usable()
        .filter(
            kind=CredentialKind.ACCESS_TOKEN,
            expires_at__lte=soon,
            connection__auth_method="oauth2",
            connection__status__in=[ConnectionStatus.ACTIVE, ConnectionStatus.FAILING],
            connection__oauth_app__grant_type=OAuthApp.Grant.AUTHORIZATION_CODE,
        )
        .values_list("connection_id", flat=True)
    )
    counts = {"refreshed": 0, "failed": 0}
    for connection in Connection.objects.filter(pk__in=connection_ids).select_related("oauth_app"):
        try:
            refresh_access_token(connection, ahead_seconds=within_seconds)
            counts["refreshed"] += 1
        except HubError as exc:
            counts["failed"] += 1
            logger.warning("could not refresh the token of %s: %s", connection.slug, exc)
    return counts


SCHEDULES = [
    # (name, function, minutes between runs)
    (
        "connectors: refresh OAuth tokens that expire soon",
        "connectors.tasks.refresh_expiring_tokens",
        5,
    ),
    ("connectors: purge old API calls", "connectors.tasks.purge_api_calls", 5),
    (
        "connectors: purge expired idempotency records",
        "connectors.tasks.purge_idempotency_records",
        5,
    ),
]


def ensure_schedules(**kwargs) -> None:
    """Create the periodic schedules if missing (idempotent; run after every migrate)."""
    for name, func, minutes in SCHEDULES:
        every(minutes, name, func)
