"""Staff single sign-on through a real OpenID Connect provider (django-oauth-toolkit with OIDC):
an allowed domain gets an operator account, another domain is refused."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.oauth_server.server import consent

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sso_settings(settings, oauth_server):
    app = oauth_server.apps["hub-sso"]
    settings.AUTHENTICATION_BACKENDS = [
        "django.contrib.auth.backends.ModelBackend",
        "social_core.backends.open_id_connect.OpenIdConnectAuth",
    ]
    settings.SOCIAL_AUTH_OIDC_OIDC_ENDPOINT = oauth_server.url + "/o"
    settings.SOCIAL_AUTH_OIDC_KEY = app["client_id"]
    settings.SOCIAL_AUTH_OIDC_SECRET = app["client_secret"]
    settings.HUB_SSO_ALLOWED_DOMAINS = ["example.test"]
    settings.SSO_PROVIDERS = [("oidc", "Company SSO")]
    return settings


def sign_in(user: str, password: str) -> tuple[Client, object]:
    """Press "Sign in with …" on the console, log in and consent at the provider, come back."""
    client = Client()
    start = client.post("/auth/login/oidc/")
    assert start.status_code == 302 and urlsplit(start["Location"]).path == "/o/authorize/"
    back = consent(start["Location"], user=user, password=password)
    done = client.get(back[len("http://testserver") :])
    return client, done


def test_the_login_page_offers_the_configured_provider(sso_settings):
    page = Client().get("/admin/login/").content.decode()
    assert "Sign in with Company SSO" in page and 'name="password"' in page


def test_an_allowed_domain_gets_an_operator_account(sso_settings):
    client, done = sign_in("alice", "alice-password")
    assert done.status_code == 302 and done["Location"] == "/admin/"
    user = get_user_model().objects.get(email="alice@example.test")
    assert user.is_staff and not user.is_superuser
    assert list(user.groups.values_list("name", flat=True)) == ["Operators"]
    assert not user.has_usable_password()
    # signed in: the console opens, and credentials stay out of reach
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/connectors/credential/").status_code == 403


def test_another_domain_is_refused(sso_settings):
    client, done = sign_in("bob", "bob-password")
    assert done.status_code == 302 and "sso=refused" in done["Location"]
    assert not get_user_model().objects.filter(email="bob@elsewhere.test").exists()
    assert client.get("/admin/").status_code == 302  # still signed out
    refused = client.get(done["Location"]).content.decode()
    assert "Single sign-on refused" in refused


def test_password_login_can_be_turned_off(sso_settings, django_user_model):
    sso_settings.HUB_PASSWORD_LOGIN = False
    sso_settings.AUTHENTICATION_BACKENDS = [
        "social_core.backends.open_id_connect.OpenIdConnectAuth"
    ]
    django_user_model.objects.create_superuser("root", "", "a-password-long-enough")
    client = Client()
    page = client.get("/admin/login/").content.decode()
    assert "Password sign-in is turned off" in page
    client.post("/admin/login/", {"username": "root", "password": "a-password-long-enough"})
    assert client.get("/admin/").status_code == 302
