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
    ],
)
def test_the_lists_fit_a_laptop_screen(hub, page, path):
    hub.login(page, "operators")
    page.goto(hub.url + path)
    assert overflow(page) <= 0, f"{path} scrolls sideways by {overflow(page)} px at 1366 px"


def test_an_operator_opens_the_incident_on_the_home_page_and_retries_its_events(hub, page):
    from monitoring.services.incidents import run_pass
    from webhooks.models import WebhookEvent

    run_pass()
    hub.login(page, "operators")
    page.get_by_role("link", name=re.compile("wait for a person")).first.click()
    page.get_by_role("button", name="Retry all its events…").click()
    page.get_by_role("button", name="Retry them").click()
    page.get_by_text("1 event(s) queued for retry.").wait_for()
    assert WebhookEvent.objects.get(status="retrying").last_error.startswith("HandlerPermanent")


def test_an_auditor_reads_the_audit_trail_and_cannot_reach_a_credential(hub, page):
    hub.login(page, "auditors")
    page.get_by_role("link", name="Audit trail").first.click()
    page.get_by_role("link", name="Credential created").first.wait_for()
    credential = page.goto(f"{hub.url}/admin/connectors/credential/")
    assert credential.status == 403
    assert "Your account <strong>auditors</strong> is in Auditors" in page.content()


def test_an_admin_creates_a_connection_with_a_credential_and_tests_it(hub, page, demo):
    hub.login(page, "integration_admins")
    page.goto(f"{hub.url}/admin/connectors/connection/add/")
    page.fill("#id_name", "Second CRM")
    page.fill("#id_base_url", hub.url + "/sandbox/crm/v1")
    page.select_option("#id_auth_method", "api_key_header")
    page.fill("#id_api_key_header_name", "X-API-Key")
    page.fill("#id_health_path", "/me")
    page.get_by_role("button", name="Save and continue editing").click()
    page.get_by_text("was added successfully").wait_for()
    page.get_by_role("link", name="Add a credential").click()
    page.select_option("#id_kind", "api_key")
    page.fill("#id_secret", demo.key)
    page.get_by_role("button", name="Save", exact=True).click()
    assert demo.key not in page.content()
    # the connection's page tests it with one real call and shows the answer
    from connectors.models import Connection

    second = Connection.objects.get(slug="second-crm")
    page.goto(f"{hub.url}/admin/connectors/connection/{second.pk}/change/")
    page.get_by_role("button", name="Test connection").click()
    page.get_by_text(re.compile(r"second-crm: 200, \d+ ms: the partner answered", re.I)).wait_for()
