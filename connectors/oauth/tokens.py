"""Access tokens: served from the encrypted credentials, refreshed before they expire, never
refreshed twice at once.

Refreshes of one connection are serialised across processes and machines by a row lock on the
connection (``select_for_update``; on SQLite the IMMEDIATE transaction takes the database write
lock, which serialises the same way). Under the lock the token is read again: if another worker
refreshed it meanwhile, that one is used. The new tokens are saved in the same transaction; a
response without a new refresh token keeps the old one. Providers that rotate refresh tokens
revoke the whole grant when an old one is reused, so this is correctness, not optimisation.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from oauthlib.oauth2 import BackendApplicationClient
from oauthlib.oauth2.rfc6749.errors import InvalidGrantError, OAuth2Error
from requests.auth import HTTPBasicAuth
from requests_oauthlib import OAuth2Session

from connectors.choices import ConnectionStatus, CredentialKind, CredentialState
from connectors.engine.errors import AuthError, RetryableError
from connectors.engine.transport import GuardedAdapter
from connectors.models import Connection, Credential, OAuthApp
from connectors.secrets import SecretValue, fingerprint
from connectors.services.credentials import create_credential, current_credential

__all__ = ["access_token", "client_auth", "oauth_session", "refresh_access_token", "store_token"]

logger = logging.getLogger("connectors.oauth")

TOKEN_TIMEOUT = (3.05, 15)


def oauth_session(app: OAuthApp, **kwargs) -> OAuth2Session:
    """A requests-oauthlib session behind the hub's guarded transport (SSRF filter, no proxies
    from the environment, no retries of its own)."""
    session = OAuth2Session(app.client_id, **kwargs)
    session.trust_env = False
    adapter = GuardedAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def client_auth(app: OAuthApp) -> dict:
    secret = app.client_secret.reveal() if app.client_secret else ""
    if app.token_endpoint_auth == OAuthApp.TokenAuth.BASIC:
        return {"auth": HTTPBasicAuth(app.client_id, secret), "include_client_id": False}
    return {"client_id": app.client_id, "client_secret": secret, "include_client_id": True}


def _fresh(credential: Credential | None, margin: int) -> bool:
    if credential is None or not credential.readable:
        return False
    return credential.expires_at is None or (
        credential.expires_at > timezone.now() + timedelta(seconds=margin)
    )


def _upsert(connection: Connection, kind: str, value: str, expires_at) -> None:
    """Put ``value`` into the connection's credential of ``kind`` (replacing the old value in
    place, so there is always exactly one active token of each kind)."""
    existing = (
        Credential.objects.filter(connection=connection, kind=kind, state=CredentialState.ACTIVE)
        .order_by("-created_at")
        .first()
    )
    if existing is None:
        create_credential(connection, kind, value, expires_at=expires_at, label="OAuth")
        return
    existing.value = SecretValue(value)
    existing.fingerprint = fingerprint(value)
    existing.expires_at = expires_at
    existing.rotated_at = timezone.now()
    existing.save(update_fields=["value", "fingerprint", "expires_at", "rotated_at", "updated_at"])


def store_token(connection: Connection, token: dict) -> None:
    """Save a token response: the access token with its expiry, the refresh token when the
    response has one (else the old one is kept), and the granted scopes."""
    expires_in = token.get("expires_in")
    expires_at = timezone.now() + timedelta(seconds=int(expires_in)) if expires_in else None
    _upsert(connection, CredentialKind.ACCESS_TOKEN, token["access_token"], expires_at)
    if token.get("refresh_token"):
        _upsert(connection, CredentialKind.REFRESH_TOKEN, token["refresh_token"], None)
    scope = token.get("scope")
    if scope:
        granted = scope.split() if isinstance(scope, str) else list(scope)
        Connection.objects.filter(pk=connection.pk).update(granted_scopes=granted)
        connection.granted_scopes = granted


class _NeedsReauth(Exception):
    """Raised inside the refresh transaction; turned into the connection's status after it
    (a status saved inside would be rolled back with it)."""


def _reauth_required(connection: Connection, reason: str) -> AuthError:
    connection.set_status(ConnectionStatus.REAUTH_REQUIRED, reason)
    logger.error(
        "connection %s needs its account reconnected: %s",
        connection.slug,
        reason,
        extra={"connection": connection.slug},
    )
    return AuthError(
        f"Connection {connection.slug!r} needs its account reconnected: {reason}.",
        hint="Reconnect the account in the admin (Connections → Connect account).",
    )


def _request_token(connection: Connection, app: OAuthApp) -> dict:
    """One call to the token endpoint: client credentials, or the refresh token grant."""
    timeout = TOKEN_TIMEOUT
    if app.grant_type == OAuthApp.Grant.CLIENT_CREDENTIALS:
        session = oauth_session(
            app,
            client=BackendApplicationClient(client_id=app.client_id),
            scope=app.default_scopes or None,
        )
        return session.fetch_token(app.token_url, timeout=timeout, **client_auth(app))
    refresh = current_credential(connection, CredentialKind.REFRESH_TOKEN)
    if refresh is None or not refresh.readable or not refresh.value.reveal():
        raise _NeedsReauth("no usable refresh token")
    session = oauth_session(app)
    return session.refresh_token(
        app.token_url, refresh_token=refresh.value.reveal(), timeout=timeout, **client_auth(app)
    )


def refresh_access_token(
    connection: Connection, *, rejected: str | None = None, ahead_seconds: int = 0
) -> str:
    """Get a new access token under the connection's row lock and return it.

    Once the lock is held the token is read again: if it is fresh (and is not ``rejected``, the
    token a partner just answered 401 to), a concurrent worker already refreshed it, and it is
    returned without calling the provider. ``ahead_seconds`` widens "fresh" for the scheduled
    refresh, which renews tokens some minutes before they expire.
    """
    app = connection.oauth_app
    if app is None:
        raise AuthError(
            f"Connection {connection.slug!r} uses OAuth 2.0 but has no OAuth app.",
            hint="Pick the OAuth app on the connection.",
        )
    try:
        return _refresh_locked(connection, app, rejected, ahead_seconds)
    except _NeedsReauth as exc:
        raise _reauth_required(connection, str(exc)) from None


def _refresh_locked(
    connection: Connection, app: OAuthApp, rejected: str | None, ahead_seconds: int
) -> str:
    with transaction.atomic():
        locked = Connection.objects.select_for_update().get(pk=connection.pk)
        current = current_credential(locked, CredentialKind.ACCESS_TOKEN)
        if _fresh(current, max(locked.token_refresh_margin_seconds, ahead_seconds)):
            value = current.value.reveal()
            if value != rejected:
                return value
        try:
            token = _request_token(locked, app)
        except InvalidGrantError as exc:
            # read under the lock: no other worker rotated the token, the grant is gone
            raise _NeedsReauth(
                f"the provider refused the grant ({exc.description or 'invalid_grant'})"
            ) from None
        except OAuth2Error as exc:
            raise AuthError(
                f"{connection.slug}: token endpoint error {exc.error}: "
                f"{exc.description or ''}".strip(),
                hint="Check the OAuth app's client id, secret and token URL.",
            ) from None
        except OSError as exc:
            raise RetryableError(f"{connection.slug}: token endpoint unreachable ({exc})") from None
        store_token(locked, token)
        logger.info(
            "access token refreshed for %s", connection.slug, extra={"connection": connection.slug}
        )
        return token["access_token"]


def access_token(connection: Connection, *, force: bool = False) -> str:
    """The connection's access token, refreshed first when it expires within the margin (or
    when ``force``: after a 401 with a token believed valid)."""
    if connection.status == ConnectionStatus.REAUTH_REQUIRED:
        raise AuthError(
            f"Connection {connection.slug!r} needs its account reconnected: "
            f"{connection.status_reason}.",
            hint="Reconnect the account in the admin (Connections → Connect account).",
        )
    current = current_credential(connection, CredentialKind.ACCESS_TOKEN)
    if not force and _fresh(current, connection.token_refresh_margin_seconds):
        return current.value.reveal()
    rejected = current.value.reveal() if (force and current and current.readable) else None
    return refresh_access_token(connection, rejected=rejected)
