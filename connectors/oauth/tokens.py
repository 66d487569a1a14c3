"""Access tokens: served from the encrypted credentials, refreshed before they expire, never
refreshed twice at once.

Refreshes of one connection are serialised across processes and machines by a lock in the
shared cache (Redis, or the database cache), held only while the provider answers; no database
transaction spans that call. Under the lock the token and the connection's state are read
again: if another caller refreshed it meanwhile, that token is used. The new tokens are saved in
one short transaction; a response without a new refresh token keeps the old one. Providers that
rotate refresh tokens revoke the whole grant when an old one is reused, so this is
correctness, not optimisation.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import timedelta

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from oauthlib.oauth2 import BackendApplicationClient
from oauthlib.oauth2.rfc6749.errors import InvalidGrantError, OAuth2Error
from requests.auth import HTTPBasicAuth
from requests_oauthlib import OAuth2Session

from connectors.choices import ConnectionStatus, CredentialKind, CredentialState
from connectors.engine.errors import AuthError, BlockedURLError, RetryableError
from connectors.engine.ssrf import BlockedAddress
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


def refresh_margin(credential: Credential | None, configured: int) -> int:
    """Seconds before expiry at which a token is refreshed: the connection's margin, but at
    most half the token's lifetime, so that a token living 60 s with a 300 s margin is not
    refreshed on every call."""
    if credential is None or credential.expires_at is None:
        return configured
    issued = credential.rotated_at or credential.created_at
    lifetime = (credential.expires_at - issued).total_seconds() if issued else 0
    return int(min(configured, lifetime / 2)) if lifetime > 0 else configured


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


# One refresh of a connection at a time, across processes and machines: a lock in the shared
# cache, held for the token request only; it outlives one request (3 s connect + 15 s read).
REFRESH_LOCK_SECONDS = 30
# How long a caller waits for another's refresh before it gives up (a transient error).
REFRESH_WAIT_SECONDS = 25


def refresh_access_token(
    connection: Connection, *, rejected: str | None = None, ahead_seconds: int = 0
) -> str:
    """Get a new access token and return it; one refresh per connection at a time.

    Before refreshing, and again once the refresh lock is held, the connection and its token
    are read again: a connection found in *reauth required* fails at once (a revoked grant is
    not asked again by every waiting caller), and a token that is fresh and is not
    ``rejected`` (the token a partner just answered 401 to) was renewed by another caller: it
    is returned without calling the provider. So any number of concurrent 401s on one token
    cause exactly one refresh, and no refresh revokes a token another caller just received.
    ``ahead_seconds`` widens "fresh" for the scheduled refresh.

    No database transaction is held across the provider's answer (on SQLite that would hold
    the database-wide write lock, stalling webhook ingest behind a slow token endpoint): the
    lock is a cache key, and the new tokens are saved in one short transaction.
    """
    app = connection.oauth_app
    if app is None:
        raise AuthError(
            f"Connection {connection.slug!r} uses OAuth 2.0 but has no OAuth app.",
            hint="Pick the OAuth app on the connection.",
        )
    key, owner = f"hub:oauth:refresh:{connection.pk}", uuid.uuid4().hex
    deadline = time.monotonic() + REFRESH_WAIT_SECONDS
    while True:
        held = cache.add(key, owner, REFRESH_LOCK_SECONDS)
        try:
            renewed = _renewed_meanwhile(connection, rejected, ahead_seconds)
            if renewed is not None:
                return renewed
            if held:
                return _refresh(connection, app)
        except _NeedsReauth as exc:
            raise _reauth_required(connection, str(exc)) from None
        finally:
            if held and cache.get(key) == owner:
                cache.delete(key)
        if time.monotonic() >= deadline:
            raise RetryableError(
                f"{connection.slug}: another process has been refreshing the access token for "
                f"{REFRESH_WAIT_SECONDS} s; try again shortly."
            )
        time.sleep(0.1)


def _renewed_meanwhile(connection: Connection, rejected: str | None, ahead: int) -> str | None:
    """The stored token if another caller renewed it (fresh, and not the rejected one)."""
    state = Connection.objects.values("status", "status_reason").get(pk=connection.pk)
    if state["status"] == ConnectionStatus.REAUTH_REQUIRED:
        connection.status, connection.status_reason = state["status"], state["status_reason"]
        raise AuthError(
            f"Connection {connection.slug!r} needs its account reconnected: "
            f"{state['status_reason'] or 'the provider refused its tokens'}.",
            hint="Reconnect the account in the admin (Connections → Connect account).",
        )
    current = current_credential(connection, CredentialKind.ACCESS_TOKEN)
    margin = max(refresh_margin(current, connection.token_refresh_margin_seconds), ahead)
    if _fresh(current, margin):
        value = current.value.reveal()
        if value != rejected:
            return value
    return None


def _refresh(connection: Connection, app: OAuthApp) -> str:
    try:
        token = _request_token(connection, app)
    except InvalidGrantError as exc:
        # read under the refresh lock: no other caller rotated the token, the grant is gone
        raise _NeedsReauth(
            f"the provider refused the grant ({exc.description or 'invalid_grant'})"
        ) from None
    except OAuth2Error as exc:
        raise AuthError(
            f"{connection.slug}: token endpoint error {exc.error}: {exc.description or ''}".strip(),
            hint="Check the OAuth app's client id, secret and token URL.",
        ) from None
    except BlockedAddress as exc:
        raise BlockedURLError(
            f"{connection.slug}: the OAuth app's token URL is refused: {exc}. Give the OAuth "
            "app a token URL on a public https address."
        ) from None
    except OSError as exc:
        raise RetryableError(f"{connection.slug}: token endpoint unreachable ({exc})") from None
    with transaction.atomic():
        store_token(connection, token)
    logger.info(
        "access token refreshed for %s", connection.slug, extra={"connection": connection.slug}
    )
    return token["access_token"]


def access_token(
    connection: Connection, *, force: bool = False, rejected: str | None = None
) -> str:
    """The connection's access token, refreshed first when it expires within the margin (or
    when ``force``: after a 401 to ``rejected``, the token the failing request sent — unless
    another caller has replaced it already)."""
    if connection.status == ConnectionStatus.REAUTH_REQUIRED:
        raise AuthError(
            f"Connection {connection.slug!r} needs its account reconnected: "
            f"{connection.status_reason}.",
            hint="Reconnect the account in the admin (Connections → Connect account).",
        )
    current = current_credential(connection, CredentialKind.ACCESS_TOKEN)
    margin = refresh_margin(current, connection.token_refresh_margin_seconds)
    if not force and _fresh(current, margin):
        return current.value.reveal()
    if force and rejected is None and current is not None and current.readable:
        rejected = current.value.reveal()
    return refresh_access_token(connection, rejected=rejected)
