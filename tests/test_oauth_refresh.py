"""OAuth refreshes under pressure, against a scripted provider (a real HTTP server on 127.0.0.1
that plays both the API and the token endpoint, and counts the token requests):

* a burst of 401s on one token causes exactly one refresh, and no caller refreshes a token that
  another caller has just received;
* a revoked grant is asked once, whatever the number of callers;
* no database write lock is held while the provider answers;
* a token URL the SSRF guard refuses is a HubError, and is refused when the app is saved."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection as db_connection
from django.utils import timezone

from connectors import hub
from connectors.choices import CredentialKind
from connectors.models import Connection, Credential, OAuthApp
from connectors.oauth.tokens import access_token, refresh_access_token
from connectors.secrets import SecretValue
from connectors.services.credentials import create_credential
from tests.partners import Reply

pytestmark = pytest.mark.django_db(transaction=True)


class Provider:
    """Answers /api/* with 200 only to the current token, and /token with a new one."""

    def __init__(self, partner, *, token_reply=None):
        self.partner = partner
        self.lock = threading.Lock()
        self.issued = 0
        self.current = "T1"
        self.token_reply = token_reply
        partner.script(self.answer)

    def answer(self, request):
        if request.path.startswith("/token"):
            if self.token_reply is not None:
                return self.token_reply(request)
            with self.lock:
                self.issued += 1
                self.current = f"T{self.issued + 1}"
                token = self.current
            return Reply(
                200,
                json={
                    "access_token": token,
                    "token_type": "Bearer",
                    "expires_in": 3600,
                    "refresh_token": f"R{self.issued + 1}",
                },
            )
        if request.headers.get("Authorization") == f"Bearer {self.current}":
            return Reply(200, json={"ok": True})
        return Reply(401, json={"error": "invalid_token"})

    def token_requests(self) -> int:
        return sum(1 for r in self.partner.requests if r.path.startswith("/token"))


def oauth_connection(partner, slug="acme") -> Connection:
    app = OAuthApp.objects.create(
        name=f"{slug} app",
        grant_type=OAuthApp.Grant.AUTHORIZATION_CODE,
        token_url=partner.url + "/token",
        client_id="client-1",
        client_secret=SecretValue("client-secret-1"),
        token_endpoint_auth=OAuthApp.TokenAuth.POST,
    )
    connection = Connection.objects.create(
        name=slug,
        slug=slug,
        base_url=partner.url + "/api",
        auth_method="oauth2",
        oauth_app=app,
        retry_max_attempts=1,
    )
    create_credential(
        connection,
        CredentialKind.ACCESS_TOKEN,
        "T1",
        expires_at=timezone.now() + timedelta(hours=1),
    )
    create_credential(connection, CredentialKind.REFRESH_TOKEN, "R1")
    return connection


def at_once(count: int, func) -> list:
    barrier = threading.Barrier(count)
    results, lock = [], threading.Lock()

    def run():
        barrier.wait(timeout=10)
        try:
            outcome = func()
        except Exception as exc:  # the assertions show it
            outcome = exc
        finally:
            db_connection.close()
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def test_a_burst_of_401s_on_one_token_causes_exactly_one_refresh(partner):
    # given a token the provider stopped accepting (the hub believes it valid for an hour)
    provider = Provider(partner)
    oauth_connection(partner)
    provider.current = "revoked-elsewhere"
    # when six callers get their 401 at once
    results = at_once(6, lambda: hub.call("acme", "GET", "/me").status)
    # then every one succeeds with the single new token
    assert results == [200] * 6
    assert provider.token_requests() == 1


def test_a_401_on_a_token_already_replaced_uses_the_new_one(partner):
    provider = Provider(partner)
    connection = oauth_connection(partner)
    # another caller refreshed after a 401 on T1: T2 is stored
    assert refresh_access_token(connection, rejected="T1") == "T2"
    assert provider.token_requests() == 1
    # when a slower caller reports its own 401 on T1
    token = access_token(connection, force=True, rejected="T1")
    # then it gets T2 and asks nothing (a second refresh could revoke T2 in someone's hands)
    assert token == "T2"
    assert provider.token_requests() == 1


def test_a_revoked_grant_is_asked_once_whatever_the_number_of_callers(partner):
    refused = Reply(400, json={"error": "invalid_grant", "error_description": "revoked"})
    provider = Provider(partner, token_reply=lambda request: refused)
    connection = oauth_connection(partner)
    Credential.objects.filter(connection=connection, kind="access_token").update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    results = at_once(5, lambda: hub.call("acme", "GET", "/me"))
    assert all(isinstance(r, hub.AuthError) for r in results), results
    assert all("reconnected" in str(r) for r in results)
    assert provider.token_requests() == 1
    connection.refresh_from_db()
    assert connection.status == "reauth_required"


def test_no_database_write_waits_for_the_token_endpoint(partner):
    # given a token endpoint that answers only once another writer got through
    written = threading.Event()
    answered = []

    def slow_token(request):
        answered.append(written.wait(timeout=30))
        return Reply(200, json={"access_token": "T9", "expires_in": 3600, "token_type": "Bearer"})

    Provider(partner, token_reply=slow_token)
    connection = oauth_connection(partner)
    Credential.objects.filter(connection=connection, kind="access_token").update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    def writer():
        # the very row the old refresh locked, written while the provider is thinking
        while not partner.requests:
            threading.Event().wait(0.05)
        Connection.objects.filter(pk=connection.pk).update(name="written meanwhile")
        written.set()
        db_connection.close()

    thread = threading.Thread(target=writer)
    thread.start()
    token = access_token(connection)
    thread.join(timeout=60)
    assert token == "T9"
    assert answered == [True]  # the write went through while the refresh waited for its answer
    connection.refresh_from_db()
    assert connection.name == "written meanwhile"


def test_a_token_url_the_guard_refuses_is_a_hub_error_and_refused_on_save(partner, settings):
    connection = oauth_connection(partner)
    Credential.objects.filter(connection=connection, kind="access_token").update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    settings.HUB_ALLOW_PRIVATE_NETWORKS = False
    with pytest.raises(hub.HubError, match="token URL is refused") as raised:
        access_token(connection)
    assert isinstance(raised.value, hub.BlockedURLError)
    assert partner.requests == []
    app = connection.oauth_app
    with pytest.raises(ValidationError) as invalid:
        app.full_clean()
    assert "token_url" in invalid.value.message_dict
    assert "loopback" in invalid.value.message_dict["token_url"][0]
    settings.HUB_OAUTH_ALLOW_HTTP = False
    app.token_url = "http://partner.example.test/token"
    with pytest.raises(ValidationError, match="Use https"):
        app.full_clean()
