"""The console as each role uses it, in Chromium at 1366 x 768."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import urljoin

import pytest

from connectors.roles import ADMINS, AUDITORS, DATA_PROTECTION, OPERATORS

pytestmark = pytest.mark.django_db(transaction=True)

ROLES = {
    ADMINS: "integration_admins",
    OPERATORS: "operators",
    AUDITORS: "auditors",
    DATA_PROTECTION: "data_protection_officers",
    "superuser": "root",
}
HREF = re.compile(r'href="([^"]+)"')


def console_links(html: str, url: str, base: str) -> list[str]:
    """The console pages a page links to: lists, rows, panels (not every filter or sort)."""
    out = []
    for href in HREF.findall(html):
        link = urljoin(url, unescape(href)).split("#")[0]
        path = link[len(base) :]
        if not link.startswith(f"{base}/admin/") or "logout" in path:
            continue
        if "?" in path and not path.startswith("/admin/governance/deliverables/"):
            continue
        out.append(link)
    return out


@pytest.mark.parametrize("role", list(ROLES))
def test_every_console_page_opens_for_each_role_without_a_secret_or_an_error(hub, page, role):
    """Crawl what a role reaches from the home page, with the browser's session: no page
    answers 500, none holds a secret, and no link leads the role to a page it cannot open."""
    hub.login(page, ROLES[role])
    seen, todo, forbidden = set(), [f"{hub.url}/admin/"], []
    while todo and len(seen) < 400:
        url = todo.pop(0)
        if url in seen:
            continue
        seen.add(url)
        response = page.request.get(url)
        assert response.status != 500, url
        if response.status == 403:
            forbidden.append(url)
        body = response.text()
        for secret in hub.secrets:
            assert secret not in body, f"a secret on {url}"
        if response.headers.get("content-type", "").startswith("text/html"):
            todo += [link for link in console_links(body, url, hub.url) if link not in seen]
    assert len(seen) > 20, seen
    assert forbidden == [], f"{role} is led to pages it cannot open: {forbidden}"


def overflow(page) -> int:
    """How many pixels the page is wider than the window (0: no horizontal scroll)."""
    return page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )


@pytest.mark.parametrize(
    "path",
    [
        "/admin/",
        "/admin/webhooks/webhookevent/",
        "/admin/connectors/apicall/",
        "/admin/flows/flowrun/",
        "/admin/syncs/syncrun/",
        "/admin/connectors/connection/",
        "/admin/monitoring/incident/",
        "/admin/flows/mapping/add/",
        "/admin/connectors/connection/add/",
    ],
)
def test_the_lists_fit_a_laptop_screen(hub, page, path):
    hub.login(page, "integration_admins")
    page.goto(hub.url + path)
    assert overflow(page) <= 0, f"{path} scrolls sideways by {overflow(page)} px at 1366 px"


def test_an_operator_opens_the_incident_on_the_home_page_and_retries_its_events(hub, page):
    from monitoring.services.incidents import run_pass
    from webhooks.models import WebhookEvent

    run_pass()
    hub.login(page, "operators")
    hub.shot(page, "0-home")
    page.get_by_role("link", name=re.compile("wait for a person")).first.click()
    page.get_by_role("button", name="Retry all its events…").click()
    page.get_by_role("button", name="Retry them").click()
    page.get_by_text("1 event queued for retry.").wait_for()
    assert WebhookEvent.objects.get(status="retrying").last_error.startswith("HandlerPermanent")


def test_an_auditor_reads_the_audit_trail_and_cannot_reach_a_credential(hub, page):
    hub.login(page, "auditors")
    page.get_by_role("link", name="Audit trail").first.click()
    page.get_by_role("link", name="Credential created").first.wait_for()
    credential = page.goto(f"{hub.url}/admin/connectors/credential/")
    assert credential.status == 403
    assert "Your account <strong>auditors</strong> is in Auditors" in page.content()


def test_getting_started_connection_credential_test_endpoint_mapping_flow_event(hub, page, demo):
    """docs/getting-started.md, done in the browser: each step through the console's forms,
    then a signed event goes through the new flow (its screenshots are the doc's)."""
    from connectors.models import Connection
    from sandbox.emitter import emit, new_signing_secret, payment_event
    from webhooks.models import WebhookEvent
    from webhooks.services.processing import process_event

    hub.login(page, "integration_admins")
    # 1. a connection
    page.goto(f"{hub.url}/admin/connectors/connection/add/")
    page.fill("#id_name", "Second CRM")
    page.fill("#id_base_url", hub.url + "/sandbox/crm/v1")
    page.select_option("#id_auth_method", "api_key_header")
    page.fill("#id_api_key_header_name", "X-API-Key")
    page.fill("#id_health_path", "/me")
    hub.shot(page, "1-connection")
    page.get_by_role("button", name="Save and continue editing").click()
    page.get_by_text("was added successfully").wait_for()
    second = Connection.objects.get(slug="second-crm")
    # 2. its credential (write-only: the value never comes back)
    page.get_by_role("link", name="Add a credential").click()
    page.select_option("#id_kind", "api_key")
    page.fill("#id_secret", demo.key)
    page.get_by_role("button", name="Save", exact=True).click()
    assert demo.key not in page.content()
    # 3. the test: one real call to the health path, its answer on the page
    page.goto(f"{hub.url}/admin/connectors/connection/{second.pk}/change/")
    page.get_by_role("button", name="Test connection").click()
    page.get_by_text(re.compile(r"second-crm: 200, \d+ ms: the partner answered", re.I)).wait_for()
    hub.shot(page, "3-test-connection")
    # 4. an endpoint for the payment provider's events, and its signing secret
    signing = new_signing_secret()
    payments = Connection.objects.get(slug="sandbox-payments")
    page.goto(f"{hub.url}/admin/webhooks/webhookendpoint/add/")
    page.fill("#id_slug", "shop-payments")
    page.select_option("#id_connection", str(payments.pk))
    page.select_option("#id_scheme", "standard_webhooks")
    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_text("was added successfully").wait_for()
    page.goto(f"{hub.url}/admin/connectors/credential/add/?connection={payments.pk}")
    page.select_option("#id_kind", "webhook_signing_secret")
    page.fill("#id_secret", signing)
    page.get_by_role("button", name="Save", exact=True).click()
    # 5. a mapping: only these fields leave the hub
    page.goto(f"{hub.url}/admin/flows/mapping/add/")
    page.fill("#id_slug", "payer-to-contact")
    page.fill("#id_name", "Payer to contact")
    page.fill("#id_rules-0-source", "data.object.customer.email")
    page.fill("#id_rules-0-target", "email")
    page.check("#id_rules-0-required")
    page.check("#id_rules-0-pii")
    hub.shot(page, "5-mapping")
    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_text("was added successfully").wait_for()
    # 6. the flow: on a payment, create the contact
    page.goto(f"{hub.url}/admin/flows/flow/add/")
    page.fill("#id_slug", "payments-to-second-crm")
    page.fill("#id_name", "Payments to the second CRM")
    page.select_option("#id_trigger", "webhook")
    page.select_option("#id_endpoint", label="/webhooks/shop-payments/")
    page.fill("#id_event_type", "payment.succeeded")
    page.select_option("#id_connection", str(second.pk))
    page.select_option("#id_mapping", label="Payer to contact")
    page.fill("#id_path", "/contacts")
    hub.shot(page, "6-flow")
    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_text("was added successfully").wait_for()
    # 7. watch an event: signed by the partner, stored, processed, the contact created
    event = payment_event(email="grace@example.test")
    response = emit(f"{hub.url}/webhooks/shop-payments/", signing, event)
    assert response.status_code == 202, response.text
    stored = WebhookEvent.objects.get(event_id=event["id"])
    assert process_event(stored.pk) == "processed"
    page.goto(f"{hub.url}/admin/webhooks/webhookevent/")
    hub.shot(page, "7-events")
    page.goto(f"{hub.url}/admin/webhooks/webhookevent/{stored.pk}/change/")
    page.get_by_text("Processed").first.wait_for()
    assert "grace@example.test" in page.content()  # the body, as received
    from sandbox.models import SandboxContact

    assert SandboxContact.objects.filter(email="grace@example.test").count() == 1
    hub.shot(page, "8-event")
    assert demo.key not in page.content() and signing not in page.content()


def test_the_connection_and_flow_forms_ask_only_what_applies(hub, page):
    hub.login(page, "integration_admins")
    page.goto(f"{hub.url}/admin/connectors/connection/add/")

    def visible(name):
        return page.locator(f".form-row.field-{name}:visible")

    page.select_option("#id_auth_method", "api_key_header")
    assert visible("api_key_header_name").count() == 1
    assert visible("basic_username").count() == visible("oauth_app").count() == 0
    page.select_option("#id_auth_method", "basic")
    assert visible("basic_username").count() == 1 and visible("api_key_header_name").count() == 0
    page.select_option("#id_auth_method", "oauth2")
    assert visible("oauth_app").count() == visible("requested_scopes").count() == 1
    page.goto(f"{hub.url}/admin/flows/flow/add/")
    page.select_option("#id_trigger", "schedule")
    assert visible("cron").count() == 1 and visible("endpoint").count() == 0
    page.select_option("#id_trigger", "webhook")
    assert visible("endpoint").count() == visible("event_type").count() == 1
    assert visible("cron").count() == 0
    # an endpoint's scheme options only for the scheme that takes them (generic HMAC)
    page.goto(f"{hub.url}/admin/webhooks/webhookendpoint/add/")
    page.select_option("#id_scheme", "stripe")
    assert visible("scheme_options").count() == 0
    page.select_option("#id_scheme", "hmac")
    assert visible("scheme_options").count() == 1


def test_a_person_switches_the_console_to_french_from_its_header(hub, page):
    hub.login(page, "operators")
    page.select_option("#hub-language-select", "fr")
    page.wait_for_url(f"{hub.url}/admin/")
    page.get_by_role("button", name="Déconnexion").wait_for()
    assert page.locator("html").get_attribute("lang") == "fr"
    page.goto(f"{hub.url}/admin/webhooks/webhookevent/")
    assert re.search(r"\d+ \w+ \d{4}, \d\d:\d\d UTC", page.content())


def test_an_operator_reads_a_workflow_run_step_by_step_and_retries_it_from_the_failed_step(
    hub, page
):
    from connectors.models import Connection
    from flows.models import Flow, FlowRun, Mapping, MappingRule
    from flows.services import workflow
    from flows.services.runner import run_flow
    from sandbox.models import SandboxContact, SandboxState
    from tests.processes import purge_queue

    contact = Mapping.objects.create(slug="support-contact", name="Support contact")
    MappingRule.objects.create(
        mapping=contact, position=1, source="email", target="email", pii=True
    )
    MappingRule.objects.create(
        mapping=contact, position=2, source="steps.priority.data.priority", target="priority"
    )
    flow = Flow(
        slug="support-to-crm",
        name="Support request to the CRM",
        trigger="manual",
        connection=Connection.objects.get(slug="sandbox-crm"),
        steps=[
            {"name": "priority", "kind": "python", "handler": "support_priority"},
            {"name": "contact", "kind": "call", "path": "/contacts", "mapping": "support-contact"},
        ],
    )
    flow.full_clean()
    flow.save()
    # the CRM answers 503 to the contact's three attempts: the run stops at that step
    SandboxState.objects.filter(service="crm").update(fail_next=3)
    request = {"email": "carol@example.test", "subject": "The site is down"}
    with pytest.raises(Exception, match="503"):
        run_flow(flow, request, trigger="manual", trigger_ref="form-1")
    run = FlowRun.objects.get(flow=flow)
    hub.login(page, "operators")
    page.goto(f"{hub.url}/admin/flows/flowrun/{run.pk}/change/")
    steps = page.locator("table.hub-run-steps tr.hub-step")
    assert steps.count() == 2
    assert "priority" in steps.nth(0).inner_text() and "Succeeded" in steps.nth(0).inner_text()
    failed = steps.nth(1).inner_text()
    assert "contact" in failed and "Transient error (retried)" in failed
    assert failed.count("POST /contacts → 503") == 3
    # what the step sent, without the person: the operator has no PII permission
    assert '"priority": "urgent"' in failed
    # its error on a row of its own, under it
    error = page.locator("table.hub-run-steps tr.hub-step-error")
    assert error.count() == 1 and "503 from the partner" in error.inner_text()
    assert "carol@example.test" not in page.content()
    # the whole table within its field: no column cut off, nothing to scroll sideways
    past = page.evaluate(
        "() => { const row = document.querySelector('table.hub-run-steps').closest('.form-row');"
        " return row.scrollWidth - row.clientWidth; }"
    )
    assert overflow(page) <= 0 and past <= 0, f"the run's steps are {past} px too wide"
    page.locator("table.hub-run-steps").scroll_into_view_if_needed()
    hub.shot(page, "9-workflow-run")
    purge_queue()
    page.get_by_role("button", name="Retry from the failed step").click()
    page.get_by_text("The run resumes at its failed step.").wait_for()
    assert workflow.resume_run(run.pk) == "succeeded"  # the worker's part, here
    page.reload()
    steps = page.locator("table.hub-run-steps tr.hub-step")
    assert "Succeeded" in steps.nth(1).inner_text()
    assert "POST /contacts → 201" in steps.nth(1).inner_text()
    assert steps.nth(0).locator("td").nth(3).inner_text() == "1"  # the rules ran once
    assert SandboxContact.objects.get(email="carol@example.test").data["priority"] == "urgent"
    assert "Retry from the failed step" not in page.content()
    purge_queue()
