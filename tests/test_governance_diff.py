"""Works in test, not in prod: the differences between a sandbox connection and its
production twin, worst first, from the command and the console."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from connectors.choices import CredentialKind
from connectors.models import Connection
from connectors.services.credentials import create_credential
from flows.models import Flow, Mapping
from governance.diff import compare
from webhooks.models import WebhookEndpoint, WebhookEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def twins(secret_value):
    sandbox = Connection.objects.create(
        name="Pay (test)",
        slug="pay-test",
        service_kind="payment",
        environment="sandbox",
        base_url="https://sandbox.pay.example.test",
        granted_scopes=["payments.read", "refunds.write"],
    )
    production = Connection.objects.create(
        name="Pay",
        slug="pay",
        service_kind="payment",
        environment="production",
        base_url="https://api.pay.example.test",
        granted_scopes=["payments.read"],
        api_version="2026-01",
    )
    # the same key pasted in both
    create_credential(sandbox, CredentialKind.API_KEY, secret_value)
    create_credential(production, CredentialKind.API_KEY, secret_value)
    endpoint = WebhookEndpoint.objects.create(connection=sandbox, slug="pay-test-in")
    WebhookEvent.objects.create(
        endpoint=endpoint, event_id="e1", event_type="payment.succeeded", body=b'{"n": "Ada"}'
    )
    mapping = Mapping.objects.create(slug="m", name="m")
    Flow.objects.create(
        slug="refund-test",
        name="refunds",
        trigger="manual",
        connection=sandbox,
        mapping=mapping,
        method="POST",
        path="/refunds",
    )
    return sandbox, production


def test_what_differs_is_listed_worst_first_with_why(twins, secret_value):
    found = compare(*twins)
    by_topic = {d.topic: d for d in found}
    assert by_topic["credential: API key"].level == "error"
    assert "the same secret in both" in by_topic["credential: API key"].why
    assert by_topic["scopes granted"].level == "error"
    assert "production lacks refunds.write" in by_topic["scopes granted"].why
    assert by_topic["webhook endpoint"].production == "none"
    assert by_topic["flow"].sandbox == "refunds" and by_topic["flow"].production == "missing"
    assert by_topic["API version"].level == "warning"
    assert by_topic["base URL"].level == "info"
    levels = [d.level for d in found]
    assert levels == sorted(levels, key=["error", "warning", "info"].index)
    assert not any(secret_value in f"{d.sandbox}{d.production}{d.why}" for d in found)


def test_the_command_prints_them_and_fails_on_what_breaks_production(twins):
    out = io.StringIO()
    with pytest.raises(CommandError, match=r"4 difference\(s\) would break production"):
        call_command("integrations", "diff", "pay-test", "pay", stdout=out)
    assert "[error] credential: API key:" in out.getvalue()
    with pytest.raises(CommandError, match='no connection "nope"'):
        call_command("integrations", "diff", "nope", "pay")


def test_data_seen_in_production_only_is_flagged(twins):
    sandbox, production = twins
    live = WebhookEndpoint.objects.create(connection=production, slug="pay-in", scheme="github")
    WebhookEvent.objects.create(
        endpoint=live,
        event_id="p1",
        event_type="payment.disputed",
        body='{"name": "Zoë Ångström", "notes": "'.encode() + b"x" * 500 + b'"}',
    )
    by_topic = {d.topic: d for d in compare(sandbox, production)}
    assert "payment.disputed" in by_topic["event types seen"].why
    assert by_topic["non-ASCII characters"].production == "1 of 1 events"
    assert by_topic["largest payload"].level == "warning"
    assert by_topic["endpoint verification scheme"].production == "github"


def test_the_console_page_compares_from_the_connection_page(integration_admin_client, twins):
    _, production = twins
    page = integration_admin_client.get(
        reverse("admin:connectors_connection_change", args=[production.pk])
    ).content.decode()
    assert "Works in test, not in prod? Compare with" in page
    url = reverse("governance_diff") + "?sandbox=pay-test&production=pay"
    assert url.replace("&", "&amp;") in page
    html = integration_admin_client.get(url).content.decode()
    assert "the same secret in both environments" in html
