"""OAuth 2.0 tokens against a real authorization server (django-oauth-toolkit on 127.0.0.1,
refresh-token rotation on): client credentials, refresh before expiry, rotation, one refresh for
many concurrent callers, a revoked grant, and a 401 with a token believed valid."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection as db_connection
from django.utils import timezone

from connectors import hub
from connectors.choices import CredentialKind
from connectors.models import Connection, Credential, OAuthApp
from connectors.secrets import SecretValue
from connectors.services.credentials import create_credential
from tests.processes import hub_process_env

pytestmark = pytest.mark.django_db(transaction=True)


def make_app(server, grant: str) -> OAuthApp:
    name = "hub-machine" if grant == OAuthApp.Grant.CLIENT_CREDENTIALS else "hub-code"
    creds = server.apps[name]
    return OAuthApp.objects.create(
        name=f"{name}-{grant}",
        grant_type=grant,
        token_url=server.url + "/o/token/",
        authorization_url=server.url + "/o/authorize/",
        revocation_url=server.url + "/o/revoke_token/",
        client_id=creds["client_id"],
        client_secret=SecretValue(creds["client_secret"]),
        default_scopes=["contacts.read"],
    )


def make_connection(server, app: OAuthApp, slug: str) -> Connection:
    return Connection.objects.create(
        name=slug,
        slug=slug,
        base_url=server.url + "/api",
        auth_method="oauth2",
        oauth_app=app,
        retry_max_attempts=1,
    )


def give_tokens(
    connection: Connection, tokens: dict, *, expires_in: int, issued_ago: int = 3600
) -> None:
    """Tokens ``expires_in`` seconds from expiry, issued ``issued_ago`` seconds ago (a token of
    an hour's lifetime near its end, by default)."""
    access = create_credential(
        connection,
        CredentialKind.ACCESS_TOKEN,
        tokens["access_token"],
        expires_at=timezone.now() + timedelta(seconds=expires_in),
    )
    Credential.objects.filter(pk=access.pk).update(
        created_at=timezone.now() - timedelta(seconds=issued_ago)
    )
    create_credential(connection, CredentialKind.REFRESH_TOKEN, tokens["refresh_token"])


def secret_of(connection, kind) -> str:
    return Credential.objects.get(connection=connection, kind=kind, state="active").value.reveal()


def test_client_credentials_fetches_once_and_caches(oauth_server):
    app = make_app(oauth_server, OAuthApp.Grant.CLIENT_CREDENTIALS)
    connection = make_connection(oauth_server, app, "machine")
    before = oauth_server.stats()["access_tokens"]
    assert hub.call("machine", "GET", "/me/").status == 200
    assert hub.call("machine", "GET", "/me/").status == 200
    # one token issued, reused by the second call
    assert oauth_server.stats()["access_tokens"] == before + 1
    stored = Credential.objects.get(connection=connection, kind="access_token")
    assert stored.expires_at is not None and stored.expires_at > timezone.now()


def test_an_expiring_token_is_refreshed_first_and_rotation_is_kept(oauth_server):
    app = make_app(oauth_server, OAuthApp.Grant.AUTHORIZATION_CODE)
    connection = make_connection(oauth_server, app, "expiring")
    tokens = oauth_server.issue_tokens(expires_in=30)  # inside the 60 s margin
    give_tokens(connection, tokens, expires_in=30)
    response = hub.call("expiring", "GET", "/me/")
    assert response.json() == {"user": "alice"}
    # the provider rotated the refresh token: the new one is stored, the old one is revoked
    new_access = secret_of(connection, "access_token")
    new_refresh = secret_of(connection, "refresh_token")
    assert new_access != tokens["access_token"] and new_refresh != tokens["refresh_token"]
    assert oauth_server.stats()["revoked_refresh_tokens"] >= 1
    assert Credential.objects.filter(connection=connection).count() == 2  # replaced in place


def test_a_token_shorter_lived_than_the_margin_is_not_refreshed_on_every_call(oauth_server):
    # given a provider issuing 60 s tokens, and a connection refreshing 300 s before expiry
    app = make_app(oauth_server, OAuthApp.Grant.AUTHORIZATION_CODE)
    connection = make_connection(oauth_server, app, "short-lived")
    connection.token_refresh_margin_seconds = 300
    connection.save()
    tokens = oauth_server.issue_tokens(expires_in=60)
    give_tokens(connection, tokens, expires_in=60, issued_ago=0)
    before = oauth_server.stats()["refresh_tokens"]
    # when it is called a few times in its first half-life
    for _ in range(3):
        assert hub.call("short-lived", "GET", "/me/").status == 200
    # then the margin adapted (half the lifetime): no refresh yet
    assert oauth_server.stats()["refresh_tokens"] == before
    assert secret_of(connection, "access_token") == tokens["access_token"]


def test_a_refresh_response_without_a_refresh_token_keeps_the_old_one(oauth_server):
    from connectors.oauth.tokens import store_token

    app = make_app(oauth_server, OAuthApp.Grant.AUTHORIZATION_CODE)
    connection = make_connection(oauth_server, app, "keeps")
    give_tokens(connection, {"access_token": "a" * 30, "refresh_token": "r" * 30}, expires_in=10)
    store_token(connection, {"access_token": "b" * 30, "expires_in": 3600, "scope": "x y"})
    assert secret_of(connection, "access_token") == "b" * 30
    assert secret_of(connection, "refresh_token") == "r" * 30
    connection.refresh_from_db()
    assert connection.granted_scopes == ["x", "y"]


def test_eight_concurrent_callers_cause_exactly_one_refresh(oauth_server):
    app = make_app(oauth_server, OAuthApp.Grant.AUTHORIZATION_CODE)
    connection = make_connection(oauth_server, app, "crowd")
    tokens = oauth_server.issue_tokens(expires_in=5)
    give_tokens(connection, tokens, expires_in=5)
    before = oauth_server.stats()
    barrier = threading.Barrier(8)
    results: list[object] = []
    lock = threading.Lock()

    def caller():
        barrier.wait(timeout=10)
        try:
            outcome = hub.call("crowd", "GET", "/me/").status
        except Exception as exc:  # the assertion below shows it
            outcome = repr(exc)
        finally:
            db_connection.close()
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    after = oauth_server.stats()
    assert results == [200] * 8
    # one refresh at the server: one new refresh token, the old one revoked (rotation)
    assert after["refresh_tokens"] - before["refresh_tokens"] == 1
    assert after["revoked_refresh_tokens"] - before["revoked_refresh_tokens"] == 1


def test_a_revoked_grant_puts_the_connection_in_reauth_required(oauth_server):
    app = make_app(oauth_server, OAuthApp.Grant.AUTHORIZATION_CODE)
    connection = make_connection(oauth_server, app, "revoked")
    tokens = oauth_server.issue_tokens(expires_in=5)
    give_tokens(connection, tokens, expires_in=5)
    oauth_server.revoke_all_refresh_tokens()
    with pytest.raises(hub.AuthError, match="reconnected") as caught:
        hub.call("revoked", "GET", "/me/")
    assert "Reconnect the account in the admin" in caught.value.hint
    connection.refresh_from_db()
    assert connection.status == "reauth_required"
    assert "invalid_grant" in connection.status_reason or "refused" in connection.status_reason
    # and later calls fail at once, without going to the provider
    before = oauth_server.stats()
    with pytest.raises(hub.AuthError, match="reconnected"):
        hub.call("revoked", "GET", "/me/")
    assert oauth_server.stats() == before


def test_a_401_with_a_token_believed_valid_refreshes_once_and_retries(oauth_server):
    app = make_app(oauth_server, OAuthApp.Grant.AUTHORIZATION_CODE)
    connection = make_connection(oauth_server, app, "unauthorized")
    tokens = oauth_server.issue_tokens(expires_in=3600)
    give_tokens(connection, tokens, expires_in=3600)
    oauth_server.revoke_access_tokens()  # the provider no longer accepts it; we do not know
    before = oauth_server.stats()["refresh_tokens"]
    assert hub.call("unauthorized", "GET", "/me/").status == 200
    assert oauth_server.stats()["refresh_tokens"] == before + 1  # exactly one refresh
    assert secret_of(connection, "access_token") != tokens["access_token"]


CALLER = """
import os, sys, time, django
django.setup()
from connectors import hub
start_at = float(sys.argv[1])
time.sleep(max(0.0, start_at - time.time()))
try:
    print(hub.call("processes", "GET", "/me/").status)
except Exception as exc:
    print(repr(exc))
"""


def test_eight_processes_cause_exactly_one_refresh(oauth_server, tmp_path):
    # given a connection whose token is about to expire, in the database the processes share
    import subprocess
    import sys
    import time
    from pathlib import Path

    app = make_app(oauth_server, OAuthApp.Grant.AUTHORIZATION_CODE)
    connection = make_connection(oauth_server, app, "processes")
    tokens = oauth_server.issue_tokens(expires_in=5)
    give_tokens(connection, tokens, expires_in=5)
    env = hub_process_env(DJANGO_SETTINGS_MODULE="integrations_site.settings")
    before = oauth_server.stats()
    # when eight separate processes call at the same instant
    start_at = str(time.time() + 8)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", CALLER, start_at],
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=Path(__file__).resolve().parent.parent,
        )
        for _ in range(8)
    ]
    outputs = [p.communicate(timeout=120) for p in processes]
    # then all succeed, and the provider saw one refresh
    assert [out.strip().splitlines()[-1] for out, _ in outputs] == ["200"] * 8, outputs
    after = oauth_server.stats()
    assert after["refresh_tokens"] - before["refresh_tokens"] == 1
    assert after["revoked_refresh_tokens"] - before["revoked_refresh_tokens"] == 1
