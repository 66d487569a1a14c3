"""The deliverables, generated from the live configuration, and --check that fails when the
committed files drift (the troubleshooting guide's live state aside)."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from connectors.choices import CredentialKind
from connectors.models import Connection
from connectors.services.credentials import create_credential
from flows.models import Flow, Mapping, MappingRule
from governance.deliverables import render_all
from webhooks.models import WebhookEndpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def configured(secret_value):
    crm = Connection.objects.create(
        name="CRM",
        slug="crm",
        environment="production",
        base_url="https://api.crm.example.test",
        purpose="Follow up on orders",
        retention_days=30,
    )
    create_credential(crm, CredentialKind.API_KEY, secret_value, label="main")
    pay = Connection.objects.create(name="Pay", slug="pay", base_url="https://pay.example.test")
    endpoint = WebhookEndpoint.objects.create(connection=pay, slug="pay-in", scheme="github")
    mapping = Mapping.objects.create(slug="contact", name="Contact")
    MappingRule.objects.create(
        mapping=mapping, position=1, source="data.email", target="email", pii=True
    )
    MappingRule.objects.create(mapping=mapping, position=2, source="data.plan", target="plan")
    Flow.objects.create(
        slug="paid",
        name="paid customer",
        trigger="webhook",
        endpoint=endpoint,
        event_type="payment.succeeded",
        connection=crm,
        mapping=mapping,
        method="POST",
        path="/contacts",
    )
    return crm


def test_each_deliverable_says_what_is_configured(configured, secret_value):
    docs = render_all()
    diagram = docs["flow-diagram.md"]
    assert "```mermaid\nflowchart LR" in diagram
    assert 'e_pay_in -->|"payment.succeeded"| f_paid' in diagram
    assert 'f_paid -->|"POST /contacts: email (PII), plan"| c_crm' in diagram
    assert "then dead-lettered and an incident is opened" in diagram
    sheet = docs["mapping-sheet.md"]
    assert "| data.email | email | copy | no | yes |" in sheet
    assert "## Contact (`contact`)\n\nSent by: flow `paid` to crm\n" in sheet
    secrets = docs["secrets.md"]
    assert f"| crm | API key | main | {configured.credentials.get().fingerprint} |" in secrets
    assert "**If a leak is suspected**" in secrets
    register = docs["processing-register.md"]
    assert (
        "| crm | Follow up on orders | email | CRM (api.crm.example.test) | 30 days | TLS;"
        in register
    )
    assert "| pay | NOT SET |" in register
    guide = docs["troubleshooting.md"]
    assert "## CRM (`crm`)" in guide and "<!-- live -->" in guide
    assert "a retry never creates twice" in guide
    # never a secret
    assert not any(secret_value in text for text in docs.values())


def test_a_workflow_is_drawn_step_by_step_to_each_step_s_connection(configured):
    """Not the one-action defaults a workflow does not use: each step that calls a partner is
    an edge, in order, to its own connection, with the fields its mapping sends."""
    Connection.objects.create(name="Books", slug="books", base_url="https://books.example.test")
    Flow.objects.create(
        slug="invoice",
        name="invoice the payment",
        trigger="manual",
        connection=configured,
        steps=[
            {"name": "verify", "kind": "fetch", "path": "/payments/{trigger.id}"},
            {"name": "wait", "kind": "delay", "for": "1h"},
            {
                "name": "bill",
                "kind": "call",
                "method": "POST",
                "path": "/invoices",
                "mapping": "contact",
                "connection": "books",
            },
        ],
    )
    diagram = render_all()["flow-diagram.md"]
    assert 'f_invoice -->|"1. verify: GET /payments/{trigger.id}"| c_crm' in diagram
    assert 'f_invoice -->|"3. bill: POST /invoices: email (PII), plan"| c_books' in diagram
    assert 'c_books["Books (sandbox)"]' in diagram
    assert 'f_invoice -->|"POST' not in diagram  # no edge for the flow's unused default
    assert (
        "| invoice the payment | by hand or the REST API | 1. verify (fetch) crm: GET "
        "/payments/{trigger.id}<br>2. wait (delay)<br>3. bill (call) books: POST /invoices | "
        "bill: email (PII), plan |"
    ) in diagram
    # the mapping sheet says where each mapping's fields go, a workflow's steps included
    Mapping.objects.create(slug="unused", name="Unused")
    sheet = render_all()["mapping-sheet.md"]
    assert "Sent by: flow `invoice`, step 3. bill to books; flow `paid` to crm\n" in sheet
    assert "## Unused (`unused`)\n\nSent by no flow.\n" in sheet


def test_check_passes_on_fresh_files_and_fails_when_the_configuration_moves(configured, tmp_path):
    call_command("deliverables", "--out", str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "flow-diagram.md",
        "mapping-sheet.md",
        "processing-register.md",
        "secrets.md",
        "troubleshooting.md",
    ]
    # the live state changes by the minute: --check ignores it
    guide = tmp_path / "troubleshooting.md"
    guide.write_text(guide.read_text().replace("Events waiting for a person: 0.", "(old)"))
    call_command("deliverables", "--out", str(tmp_path), "--check")
    # a configuration change is drift: a new PII field shows in three of them
    MappingRule.objects.create(
        mapping=Mapping.objects.get(), position=3, source="data.phone", target="phone", pii=True
    )
    with pytest.raises(
        CommandError,
        match=r"3 deliverable\(s\) differ .*: flow-diagram.md, mapping-sheet.md, "
        r"processing-register.md\.",
    ):
        call_command("deliverables", "--out", str(tmp_path), "--check")


def test_the_console_shows_each_deliverable_rendered_and_escapes_what_was_typed(
    configured, secret_value, integration_admin_client, operator_client
):
    # a name typed in the configuration is text on the page, never markup
    configured.purpose = "Follow up <script>alert(1)</script>"
    configured.save()
    page = integration_admin_client.get(reverse("governance_deliverables"))
    html = page.content.decode()
    assert page.status_code == 200 and page.context["current"] == "flow-diagram.md"
    # the diagram is left to the vendored Mermaid; the tables are HTML tables
    assert '<pre class="mermaid">flowchart LR' in html
    assert "e_pay_in --&gt;|&quot;payment.succeeded&quot;| f_paid" in html
    assert "vendor/mermaid/mermaid.min.js" in html and "<table>" in html
    register = integration_admin_client.get(
        reverse("governance_deliverable", args=["processing-register.md"])
    ).content.decode()
    assert "Follow up &lt;script&gt;alert(1)&lt;/script&gt;" in register
    assert "<script>alert(1)" not in register
    # each downloads as the file the command writes
    download = integration_admin_client.get(
        reverse("governance_deliverable", args=["mapping-sheet.md"]) + "?download=1"
    )
    assert download["Content-Disposition"] == 'attachment; filename="mapping-sheet.md"'
    assert download.content.decode() == render_all()["mapping-sheet.md"]
    # the secrets inventory is for those who may see credentials; never a value in any page
    assert (
        secret_value
        not in integration_admin_client.get(
            reverse("governance_deliverable", args=["secrets.md"])
        ).content.decode()
    )
    assert operator_client.get(reverse("governance_deliverables")).status_code == 200
    denied = operator_client.get(reverse("governance_deliverable", args=["secrets.md"]))
    assert denied.status_code == 403
    assert "secrets.md" not in dict(
        operator_client.get(reverse("governance_deliverables")).context["tabs"]
    )
    assert (
        integration_admin_client.get("/admin/governance/deliverables/nope.md/").status_code == 404
    )
