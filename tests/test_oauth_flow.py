"""Connecting an account with the authorization-code flow (+ PKCE) against a real OAuth server,
as an admin and a user would: the console's "Connect account", the provider's login and consent
pages, the callback; and disconnecting."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse

from connectors.models import AuditEntry, Connection, Credential, OAuthApp
from connectors.secrets import SecretValue
from connectors.tasks import refresh_expiring_tokens
from tests.oauth_server.server import consent

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def oauth_connection(oauth_server):
    creds = oauth_server.apps["hub-code"]
    app = OAuthApp.objects.create(
        name="dot-code",
        grant_type=OAuthApp.Grant.AUTHORIZATION_CODE,
        authorization_url=oauth_server.url + "/o/authorize/",
        token_url=oauth_server.url + "/o/token/",
        revocation_url=oauth_server.url + "/o/revoke_token/",
        userinfo_url=oauth_server.url + "/api/me/",
        client_id=creds["client_id"],
        client_secret=SecretValue(creds["client_secret"]),
        default_scopes=["contacts.read"],
    )
    return Connection.objects.create(
        name="CRM",
        slug="crm-oauth",
        base_url=oauth_server.url + "/api",
        auth_method="oauth2",
        oauth_app=app,
        requested_scopes=["contacts.read"],
    )


def test_connect_account_with_code_and_pkce(
    integration_admin_client, oauth_connection, oauth_server
):
    # given an admin who clicks "Connect account"
    start = integration_admin_client.get(reverse("oauth:connect", args=[oauth_connection.pk]))
    assert start.status_code == 302
    query = parse_qs(urlsplit(start["Location"]).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"]
    # when the user consents at the provider and comes back
    back = consent(start["Location"])
    done = integration_admin_client.get(back[back.index("/oauth/") :], follow=True)
    # then the tokens are stored encrypted and the console says which account
    assert "Account connected: alice" in done.content.decode()
    oauth_connection.refresh_from_db()
    assert oauth_connection.status == "active" and oauth_connection.oauth_account == "alice"
    kinds = set(
        Credential.objects.filter(connection=oauth_connection).values_list("kind", flat=True)
    )
    assert kinds == {"access_token", "refresh_token"}
    assert AuditEntry.objects.filter(detail__contains="OAuth account connected: alice").exists()
    from connectors import hub

    assert hub.call("crm-oauth", "GET", "/me/").json() == {"user": "alice"}
    # and the state cannot be used twice
    replay = integration_admin_client.get(back[back.index("/oauth/") :])
    assert replay.status_code == 400 and "already used" in replay.content.decode()


def test_a_tampered_state_stores_nothing(integration_admin_client, oauth_connection):
    integration_admin_client.get(reverse("oauth:connect", args=[oauth_connection.pk]))
    response = integration_admin_client.get("/oauth/callback/?code=abc&state=forged")
    assert (
        response.status_code == 400 and "unknown or was already used" in response.content.decode()
    )
    assert not Credential.objects.exists()


def test_a_denied_consent_says_so_and_stores_nothing(integration_admin_client, oauth_connection):
    start = integration_admin_client.get(reverse("oauth:connect", args=[oauth_connection.pk]))
    back = consent(start["Location"], allow=False)
    response = integration_admin_client.get(back[back.index("/oauth/") :])
    assert response.status_code == 400
    assert "access was denied" in response.content.decode()
    assert not Credential.objects.exists()


def test_operators_cannot_start_a_connection(operator_client, oauth_connection):
    response = operator_client.get(reverse("oauth:connect", args=[oauth_connection.pk]))
    assert response.status_code == 403


def test_disconnect_revokes_at_the_provider(
    integration_admin_client, oauth_connection, oauth_server
):
    start = integration_admin_client.get(reverse("oauth:connect", args=[oauth_connection.pk]))
    integration_admin_client.get(consent(start["Location"])[len("http://testserver") :])
    before = oauth_server.stats()
    action = {"action": "disconnect_accounts", "_selected_action": [oauth_connection.pk]}
    url = reverse("admin:connectors_connection_changelist")
    # one click only asks: nothing is revoked yet
    asked = integration_admin_client.post(url, action)
    assert "Yes, disconnect and revoke" in asked.content.decode()
    assert oauth_server.stats() == before
    assert Credential.objects.usable().filter(connection=oauth_connection).exists()
    response = integration_admin_client.post(url, {**action, "confirmed": "yes"}, follow=True)
    assert "disconnected; revoked at the provider" in response.content.decode()
    after = oauth_server.stats()
    assert after["revoked_refresh_tokens"] == before["revoked_refresh_tokens"] + 1
    assert not Credential.objects.usable().filter(connection=oauth_connection).exists()
    oauth_connection.refresh_from_db()
    assert oauth_connection.status == "reauth_required"
    page = integration_admin_client.get(
        reverse("admin:connectors_connection_change", args=[oauth_connection.pk])
    ).content.decode()
    assert "needs its account reconnected: account disconnected" in page
    listing = integration_admin_client.get(
        reverse("admin:connectors_connection_changelist")
    ).content.decode()
    assert "1 connection needs its account reconnected: crm-oauth" in listing


def test_the_schedule_refreshes_tokens_that_expire_soon(
    integration_admin_client, oauth_connection, oauth_server
):
    start = integration_admin_client.get(reverse("oauth:connect", args=[oauth_connection.pk]))
    integration_admin_client.get(consent(start["Location"])[len("http://testserver") :])
    first = Credential.objects.get(connection=oauth_connection, kind="access_token")
    old = first.value.reveal()
    assert refresh_expiring_tokens(within_seconds=60) == {"refreshed": 0, "failed": 0}
    assert refresh_expiring_tokens(within_seconds=10 * 3600) == {"refreshed": 1, "failed": 0}
    assert Credential.objects.get(pk=first.pk).value.reveal() != old


def test_scopes_are_shown_side_by_side_with_broad_ones_flagged(
    integration_admin_client, oauth_connection
):
    oauth_connection.granted_scopes = ["contacts.read", "admin"]
    oauth_connection.save()
    page = integration_admin_client.get(
        reverse("admin:connectors_connection_change", args=[oauth_connection.pk])
    ).content.decode()
    assert "requested: contacts.read<br>granted: contacts.read" in page
    assert 'title="looks like full access">admin</strong>' in page


def test_the_oauth_app_pages_never_show_the_client_secret(
    integration_admin_client, oauth_connection, oauth_server
):
    from django.urls import reverse

    secret = oauth_server.apps["hub-code"]["client_secret"]
    app = oauth_connection.oauth_app
    for url in [
        reverse("admin:connectors_oauthapp_changelist"),
        reverse("admin:connectors_oauthapp_change", args=[app.pk]),
        reverse("admin:connectors_connection_change", args=[oauth_connection.pk]),
    ]:
        page = integration_admin_client.get(url)
        assert page.status_code == 200 and secret not in page.content.decode(), url
    # replacing it through the write-only box works, and an empty box keeps it
    data = {
        "name": app.name,
        "grant_type": app.grant_type,
        "authorization_url": app.authorization_url,
        "token_url": app.token_url,
        "revocation_url": app.revocation_url,
        "userinfo_url": app.userinfo_url,
        "client_id": app.client_id,
        "default_scopes": '["contacts.read"]',
        "use_pkce": "on",
        "extra_authorize_params": "{}",
        "token_endpoint_auth": app.token_endpoint_auth,
        "new_client_secret": "",
    }
    url = reverse("admin:connectors_oauthapp_change", args=[app.pk])
    assert integration_admin_client.post(url, data).status_code == 302
    app.refresh_from_db()
    assert app.client_secret.reveal() == secret
    integration_admin_client.post(url, {**data, "new_client_secret": "rotated-" + secret})
    app.refresh_from_db()
    assert app.client_secret.reveal() == "rotated-" + secret
    assert app.client_secret_fingerprint.endswith(f"{secret[-4:]} ({len(secret) + 8} chars)")
    entry = AuditEntry.objects.get(detail__contains="client secret")
    assert entry.action == "credential_replaced" and "rotated-" not in entry.detail
    assert secret[-4:] in entry.detail and secret not in entry.detail
