"""The pre-production gate: `manage.py check --deploy --tag integrations` fails on what the
brief's checklist forbids, passes on a clean production setup, and the connection page shows
the checklist item by item."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.urls import reverse
from django.utils import timezone

from connectors.choices import CredentialKind
from connectors.models import Connection
from connectors.services.credentials import create_credential
from flows.models import Flow, Mapping, MappingRule
from monitoring.models import Channel
from webhooks.models import WebhookEndpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def production(settings):
    settings.DEBUG = False
    settings.SANDBOX_ENABLED = False
    settings.LOG_LEVEL = "INFO"
    settings.HUB_OAUTH_ALLOW_HTTP = False


def gate() -> tuple[str, bool]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(
            "check",
            "--deploy",
            "--tag",
            "integrations",
            "--database",
            "default",
            "--fail-level",
            "WARNING",
            stdout=out,
            stderr=err,
        )
    except SystemCheckError as exc:
        return str(exc) + out.getvalue() + err.getvalue(), False
    return out.getvalue() + err.getvalue(), True


def clean_connection(slug="crm-live", **fields) -> Connection:
    defaults = {
        "name": "CRM",
        "slug": slug,
        "environment": "production",
        "base_url": "https://api.crm.example.test",
        "owner": "ops@example.test",
        "purpose": "Customers' contact details, to follow up on their orders.",
        "retention_days": 30,
    }
    return Connection.objects.create(**{**defaults, **fields})


def test_the_gate_names_every_problem_with_its_id_and_hint(production, secret_value):
    # given a production connection that breaks most of the checklist
    connection = clean_connection(
        base_url="http://api.crm.example.test",
        owner="",
        purpose="",
        read_timeout=90,
        granted_scopes=["contacts.read", "admin"],
    )
    create_credential(connection, CredentialKind.API_KEY, "sk_test_" + secret_value, label="main")
    create_credential(
        connection,
        CredentialKind.ACCESS_TOKEN,
        secret_value + "x",
        label="token",
        expires_at=timezone.now() + timedelta(days=3),
    )
    WebhookEndpoint.objects.create(
        connection=connection, slug="crm-in", unsigned=True, timestamp_tolerance_seconds=900
    )
    mapping = Mapping.objects.create(slug="m", name="m")
    MappingRule.objects.create(
        mapping=mapping, position=1, source="email", target="email", pii=True
    )
    Flow.objects.create(
        slug="push",
        name="push",
        trigger="manual",
        connection=connection,
        mapping=mapping,
        method="POST",
        path="/contacts",
        idempotency_key_template="",
    )
    # when the gate runs
    output, passed = gate()
    # then it fails, naming each problem by its stable id, with a hint
    assert not passed
    for id_ in ("E001", "E002", "E003", "W001", "W002", "W003", "W004", "W006", "W007"):
        assert f"(hub.{id_})" in output, id_
    for id_ in ("W008", "W009", "W010", "W012"):
        assert f"(hub.{id_})" in output, id_
    assert "looks like a Stripe test secret key (credential 'main')" in output
    assert "HINT: Use the partner's https URL" in output
    # and never the secret
    assert secret_value not in output


def test_a_clean_production_setup_passes_and_sandboxes_are_not_gated(production):
    connection = clean_connection()
    Channel.objects.create(slug="ops", name="Ops", kind="email", recipients="ops@example.test")
    endpoint = WebhookEndpoint.objects.create(connection=connection, slug="crm-in", scheme="github")
    create_credential(connection, CredentialKind.WEBHOOK_SIGNING_SECRET, "whsec-real-secret")
    mapping = Mapping.objects.create(slug="m", name="m")
    Flow.objects.create(
        slug="sync",
        name="sync",
        trigger="webhook",
        endpoint=endpoint,
        connection=connection,
        mapping=mapping,
        method="POST",
        path="/contacts",
    )
    # a sandbox connection with every fault is for trying things
    Connection.objects.create(
        name="Try", slug="try", base_url="http://127.0.0.1:9", environment="sandbox"
    )
    output, passed = gate()
    assert passed, output


def test_without_a_database_the_gate_says_how_to_run_it(production):
    out = io.StringIO()
    call_command("check", "--deploy", "--tag", "integrations", stdout=out, stderr=out)
    assert "(hub.I001)" in out.getvalue() and "--database default" in out.getvalue()


def test_development_settings_are_refused(settings):
    settings.DEBUG = True
    output, passed = gate()
    assert not passed and "(hub.E005) DEBUG is on." in output


def test_the_connection_page_shows_the_checklist_item_by_item(integration_admin_client, production):
    connection = clean_connection(owner="")
    Channel.objects.create(slug="ops", name="Ops", kind="email", recipients="ops@example.test")
    page = integration_admin_client.get(
        reverse("admin:connectors_connection_change", args=[connection.pk])
    ).content.decode()
    table = page.split('class="hub-checklist"')[1].split("</table>")[0]
    rows = dict((row.split("</th>")[0].rsplit(">", 1)[1], row) for row in table.split("<tr>")[1:])
    assert list(rows) == [
        "Auth",
        "Secrets",
        "Flows",
        "Errors",
        "Idempotency",
        "Logs",
        "Monitoring",
        "GDPR",
    ]
    assert ">ok</strong>" in rows["Auth"] and ">ok</strong>" in rows["GDPR"]
    assert ">to fix</strong>" in rows["Monitoring"]
    assert "hub.W006: Production connection crm-live has no owner." in rows["Monitoring"]
