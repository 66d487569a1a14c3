"""The authorization-code flow (with PKCE), and disconnecting an account.

The state is single use, bound to the admin's session, to that connection and to the admin who
started it, and expires after ten minutes. The code is exchanged with requests-oauthlib; the
tokens become encrypted credentials; the account that was connected is shown on the connection.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import time
from dataclasses import dataclass

from django.db import transaction
from django.utils.translation import gettext as _
from oauthlib.oauth2.rfc6749.errors import OAuth2Error

from connectors.choices import AuditAction, ConnectionStatus, CredentialKind, CredentialState
from connectors.engine.errors import HubError
from connectors.engine.ssrf import BlockedAddress
from connectors.models import Connection, Credential, OAuthApp
from connectors.oauth.tokens import client_auth, oauth_session, store_token
from connectors.services.credentials import record_audit, revoke_credential

__all__ = ["FlowError", "begin_authorization", "complete_authorization", "disconnect"]

logger = logging.getLogger("connectors.oauth")

SESSION_KEY = "hub_oauth_states"
STATE_TTL_SECONDS = 600
MAX_PENDING_STATES = 10


class FlowError(HubError):
    """The flow ended without tokens; the message says what happened, for the person."""


def _pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def begin_authorization(request, connection: Connection, redirect_uri: str) -> str:
    """Remember a new state in the session and return the provider's consent URL."""
    app = connection.oauth_app
    if app is None or app.grant_type != OAuthApp.Grant.AUTHORIZATION_CODE:
        raise FlowError(_("This connection has no OAuth app using the authorization-code flow."))
    if not app.authorization_url:
        raise FlowError(_("The OAuth app has no authorization URL."))
    session = oauth_session(app, redirect_uri=redirect_uri, scope=app.default_scopes or None)
    extra = dict(app.extra_authorize_params or {})
    verifier = ""
    if app.use_pkce:
        verifier, challenge = _pkce_pair()
        extra.update(code_challenge=challenge, code_challenge_method="S256")
    url, state = session.authorization_url(app.authorization_url, **extra)
    pending = request.session.get(SESSION_KEY, {})
    now = time.time()
    pending = {k: v for k, v in pending.items() if now - v["created"] < STATE_TTL_SECONDS}
    if len(pending) >= MAX_PENDING_STATES:
        pending = dict(sorted(pending.items(), key=lambda kv: kv[1]["created"])[1:])
    pending[state] = {
        "connection": connection.pk,
        "user": request.user.pk,
        "created": now,
        "verifier": verifier,
        "redirect_uri": redirect_uri,
    }
    request.session[SESSION_KEY] = pending
    return url


@dataclass
class Connected:
    connection: Connection
    account: str


def _pop_state(request, state: str) -> dict:
    pending = request.session.get(SESSION_KEY, {})
    entry = pending.pop(state, None) if state else None
    request.session[SESSION_KEY] = pending  # single use: gone whatever happens next
    if entry is None:
        raise FlowError(
            _(
                "This authorization link is unknown or was already used. Start again "
                "from the connection's page."
            )
        )
    if time.time() - entry["created"] > STATE_TTL_SECONDS:
        raise FlowError(_("This authorization link expired (10 minutes). Start again."))
    if entry["user"] != request.user.pk:
        raise FlowError(_("This authorization was started by another user."))
    return entry


def _account_label(app: OAuthApp, token: dict) -> str:
    if app.userinfo_url:
        session = oauth_session(app, token=token)
        try:
            response = session.get(app.userinfo_url, timeout=(3.05, 10))
            if response.ok:
                info = response.json()
                for key in ("email", "preferred_username", "user", "name", "login", "sub"):
                    if info.get(key):
                        return str(info[key])[:200]
        except (OSError, ValueError):
            logger.warning("userinfo unavailable for %s", app.name)
    for key in ("email", "account", "user", "user_id", "team_name"):
        if token.get(key):
            return str(token[key])[:200]
    return ""


def complete_authorization(request, params) -> Connected:
    """Handle the provider's redirect back: check the state, exchange the code, store tokens."""
    entry = _pop_state(request, params.get("state", ""))
    if params.get("error"):
        description = params.get("error_description", "")
        what = "access was denied" if params["error"] == "access_denied" else params["error"]
        raise FlowError(
            f"The provider did not connect the account: {what}"
            + (f" ({description})" if description else "")
            + ". No token was stored."
        )
    code = params.get("code")
    if not code:
        raise FlowError(_("The provider's answer has no authorization code. No token was stored."))
    connection = Connection.objects.select_related("oauth_app").get(pk=entry["connection"])
    app = connection.oauth_app
    session = oauth_session(app, redirect_uri=entry["redirect_uri"], state=params.get("state"))
    try:
        token = session.fetch_token(
            app.token_url,
            code=code,
            code_verifier=entry["verifier"] or None,
            timeout=(3.05, 15),
            **client_auth(app),
        )
    except OAuth2Error as exc:
        raise FlowError(
            _("The provider refused the code: %(error)s%(description)s. No token was stored.")
            % {
                "error": exc.error,
                "description": f" ({exc.description})" if exc.description else "",
            }
        ) from None
    except BlockedAddress as exc:
        raise FlowError(
            _(
                "The OAuth app's token URL is refused by the hub's address guard (%(exc)s). No "
                "token was stored."
            )
            % {"exc": exc}
        ) from None
    except OSError as exc:
        raise FlowError(
            _("The token endpoint could not be reached (%(exc)s). No token was stored.")
            % {"exc": exc}
        ) from None
    account = _account_label(app, token)
    with transaction.atomic():
        store_token(connection, token)
        connection.oauth_account = account
        connection.save(update_fields=["oauth_account", "updated_at"])
        connection.set_status(ConnectionStatus.ACTIVE, f"connected as {account}" if account else "")
        record_audit(
            AuditAction.CREDENTIAL_CREATED,
            actor=request.user,
            connection=connection,
            detail=f"OAuth account connected: {account or 'unknown account'}",
        )
    return Connected(connection, account)


def disconnect(connection: Connection, *, actor=None) -> str:
    """Revoke the tokens at the provider (RFC 7009) when it has a revocation URL, then revoke
    them here. Returns what happened, in words."""
    app = connection.oauth_app
    tokens = list(
        Credential.objects.filter(
            connection=connection,
            state=CredentialState.ACTIVE,
            kind__in=[CredentialKind.REFRESH_TOKEN, CredentialKind.ACCESS_TOKEN],
        ).order_by("kind")
    )  # "access_token" < "refresh_token": revoke the refresh token last
    remote = "no revocation URL: tokens only removed here"
    if app is not None and app.revocation_url and tokens:
        session = oauth_session(app)
        failures = 0
        for credential in reversed(tokens):  # the refresh token first: it revokes the grant
            if not credential.readable:
                continue
            hint = (
                "refresh_token"
                if credential.kind == CredentialKind.REFRESH_TOKEN
                else "access_token"
            )
            try:
                auth = client_auth(app)
                data = {"token": credential.value.reveal(), "token_type_hint": hint}
                if not auth.get("auth"):
                    data.update(client_id=auth["client_id"], client_secret=auth["client_secret"])
                response = session.post(
                    app.revocation_url, data=data, auth=auth.get("auth"), timeout=(3.05, 10)
                )
                failures += response.status_code != 200
            except (OSError, BlockedAddress):
                # unreachable, or refused by the address guard: revoked here all the same
                failures += 1
        remote = (
            "revoked at the provider"
            if not failures
            else f"the provider did not confirm {failures} revocation(s)"
        )
    for credential in tokens:
        revoke_credential(credential, actor=actor, reason="OAuth account disconnected")
    connection.oauth_account = ""
    connection.save(update_fields=["oauth_account", "updated_at"])
    connection.set_status(ConnectionStatus.REAUTH_REQUIRED, "account disconnected")
    return remote
