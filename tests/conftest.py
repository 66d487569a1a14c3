"""Shared fixtures: connections, credentials with random secrets, and staff users per role."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from connectors.choices import CredentialKind
from connectors.models import Connection
from connectors.roles import ADMINS, AUDITORS, OPERATORS
from connectors.services.credentials import create_credential

# The browser tests need Chromium: `make test-browser` runs them, `make test` needs only Python.
collect_ignore = [] if os.environ.get("HUB_BROWSER_TESTS") else ["browser"]


@pytest.fixture(autouse=True)
def _fresh_cache(request, django_db_blocker):
    """Each test that uses the database starts with an empty cache: breaker, bulkhead,
    heartbeat and rate-limit state that another test's worker processes committed (no
    rollback undoes it) never leaks into the next test."""
    uses_db = request.node.get_closest_marker("django_db") or {
        "db",
        "transactional_db",
        "live_server",
    } & set(request.fixturenames)
    if not uses_db:
        return
    request.getfixturevalue("django_db_setup")
    import contextlib

    from django.core.cache import cache
    from django.db import DatabaseError

    # no cache table in this database: nothing to leak
    with django_db_blocker.unblock(), contextlib.suppress(DatabaseError):
        cache.clear()


@pytest.fixture(autouse=True)
def _no_refusal_counts_across_tests():
    from webhooks.services.refusals import counter

    yield
    counter.discard()


@pytest.fixture(autouse=True)
def _no_keep_alive_across_tests():
    """The hub's outbound session of this thread keeps its connections alive between calls;
    after each test they are closed, so that a live server's request thread waiting on one ends
    and closes its database connection (or the test database cannot be dropped at the end)."""
    yield
    from connectors.engine.transport import get_session

    get_session().close()


@pytest.fixture
def secret_value() -> str:
    """A fresh random secret, never written in the code, so a search for it is meaningful."""
    return "sk_test_" + secrets.token_urlsafe(24)


@pytest.fixture
def connection(db) -> Connection:
    return Connection.objects.create(
        name="Sandbox CRM",
        slug="crm",
        service_kind="crm",
        base_url="https://crm.example.test/api",
        owner="integrations@example.test",
    )


@pytest.fixture
def credential(connection, secret_value):
    return create_credential(connection, CredentialKind.API_KEY, secret_value, label="main key")


@pytest.fixture
def make_staff(db, django_user_model):
    """Create a staff user in a role group (or a superuser with role=None)."""

    def make(role: str | None, username: str | None = None):
        username = username or (role or "root").lower().replace(" ", "_")
        if role is None:
            return django_user_model.objects.create_superuser(username, "", "x-" + username)
        user = django_user_model.objects.create_user(username, "", "x-" + username, is_staff=True)
        user.groups.add(Group.objects.get(name=role))
        return user

    return make


@pytest.fixture
def role_client(make_staff):
    """A logged-in test client for a role: role_client(OPERATORS)."""

    def make(role: str | None) -> Client:
        client = Client()
        client.force_login(make_staff(role))
        return client

    return make


@pytest.fixture
def integration_admin_client(role_client):
    return role_client(ADMINS)


@pytest.fixture
def operator_client(role_client):
    return role_client(OPERATORS)


@pytest.fixture
def auditor_client(role_client):
    return role_client(AUDITORS)


@pytest.fixture
def partner():
    """A scripted partner server on 127.0.0.1 (see tests/partners.py)."""
    from tests.partners import ScriptedServer

    server = ScriptedServer().start()
    yield server
    server.stop()


@pytest.fixture
def api_connection(db, partner, secret_value):
    """A connection to the scripted partner, API key in a header, fast retries for tests."""
    connection = Connection.objects.create(
        name="Partner",
        slug="partner",
        base_url=partner.url + "/v1",
        auth_method="api_key_header",
        api_key_header_name="X-API-Key",
        connect_timeout=1.0,
        read_timeout=1.0,
        retry_max_attempts=4,
        retry_backoff_base=0.01,
        retry_backoff_cap=0.05,
        retry_max_elapsed=10,
        health_path="/me",
    )
    create_credential(connection, CredentialKind.API_KEY, secret_value)
    from connectors.engine.circuit import reset

    reset(connection)
    return connection


@pytest.fixture
def make_endpoint(db):
    """make_endpoint("stripe", secret) → a WebhookEndpoint at /webhooks/<slug>/ whose
    connection holds ``secret`` as its webhook signing secret."""
    from webhooks.models import WebhookEndpoint

    def make(scheme: str, secret: str | None, *, slug: str | None = None, **fields):
        slug = slug or f"{scheme or 'unsigned'}-in"
        connection = Connection.objects.create(
            name=f"{scheme} partner", slug=f"{slug}-conn", base_url="https://partner.example.test"
        )
        if secret is not None:
            create_credential(connection, CredentialKind.WEBHOOK_SIGNING_SECRET, secret)
        return WebhookEndpoint.objects.create(
            connection=connection, slug=slug, scheme=scheme, **fields
        )

    return make


@pytest.fixture
def post_webhook(client):
    """post_webhook(endpoint, body, headers) → the test client's response."""

    def post(endpoint, body: bytes, headers: dict, content_type: str = "application/json"):
        return client.post(
            f"/webhooks/{endpoint.slug}/",
            data=body,
            content_type=content_type,
            headers=headers,
        )

    return post


@pytest.fixture(scope="session")
def oauth_server():
    """One real OAuth 2.0 / OpenID Connect server (django-oauth-toolkit) for the test session,
    in its own process on 127.0.0.1 (tests/oauth_server)."""
    from tests.oauth_server.server import OAuthServer

    server = OAuthServer().start()
    yield server
    server.stop()


@pytest.fixture
def sandbox_crm(live_server):
    """A connection to the sandbox CRM served by the live server, with a fresh API key."""
    from connectors.engine.circuit import reset
    from sandbox.models import SandboxState

    key = secrets.token_urlsafe(16)
    SandboxState.objects.update_or_create(
        service="crm", defaults={"api_key": key, "log_requests": True}
    )
    connection = Connection.objects.create(
        name="CRM",
        slug="crm",
        base_url=live_server.url + "/sandbox/crm/v1",
        idempotency_header_name="Idempotency-Key",
        retry_backoff_base=0.01,
        retry_backoff_cap=0.05,
    )
    create_credential(connection, CredentialKind.API_KEY, key)
    reset(connection)
    return connection


@pytest.fixture
def smtp(settings):
    """A real SMTP server on 127.0.0.1; Django's SMTP backend pointed at it."""
    from aiosmtpd.controller import Controller

    from tests.monitoring_helpers import Inbox, free_port

    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_TIMEOUT = 5
    yield inbox
    controller.stop()


@pytest.fixture
def receiver():
    """One local HTTP server for Slack, Teams and the site's webhook receiver."""
    from tests.partners import ScriptedServer

    server = ScriptedServer().start()
    yield server
    server.stop()


DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo.yaml"


@pytest.fixture
def demo(live_server, monkeypatch):
    """The demo configuration applied against the live server, with a fresh CRM key and
    webhook signing secret."""
    from connectors.engine.circuit import reset
    from flows import iac
    from sandbox.emitter import new_signing_secret
    from sandbox.models import SandboxState

    api_key = secrets.token_urlsafe(24)
    signing_secret = new_signing_secret()
    state = SandboxState.get()
    state.api_key = api_key
    state.save()
    monkeypatch.setenv("SANDBOX_CRM_API_KEY", api_key)
    monkeypatch.setenv("SANDBOX_PAYMENTS_WEBHOOK_SECRET", signing_secret)
    document = iac.load(DEMO.read_text().replace("http://127.0.0.1:8000", live_server.url))
    crm = document["connections"][0]
    crm.update(retry_backoff_base=0.05, retry_backoff_cap=0.2, retry_max_elapsed=5.0)
    iac.apply_document(document)
    reset(Connection.objects.get(slug="sandbox-crm"))

    class Demo:
        url = f"{live_server.url}/webhooks/payments/"
        secret = signing_secret
        key = api_key

    return Demo
