"""The sandbox partner over real HTTP: its contacts API (auth, search, cursor pagination,
Idempotency-Key), its switchable faults, and its payment emitter, whose Standard Webhooks
signatures (made by the reference library) the hub verifies."""

from __future__ import annotations

import secrets

import pytest
import requests

from sandbox.emitter import emit, new_signing_secret, payment_event
from sandbox.models import SandboxContact, SandboxState
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def crm(live_server):
    key = secrets.token_urlsafe(16)
    state = SandboxState.get()
    state.api_key = key
    state.save()
    session = requests.Session()
    session.headers["X-API-Key"] = key
    session.base = live_server.url + "/sandbox/crm/v1"
    return session


def test_every_request_needs_the_api_key(crm):
    assert requests.get(crm.base + "/me", timeout=5).status_code == 401
    wrong = requests.get(crm.base + "/me", headers={"X-API-Key": "nope"}, timeout=5)
    assert wrong.status_code == 401 and wrong.json() == {"message": "invalid API key"}
    assert crm.get(crm.base + "/me", timeout=5).json()["ok"] is True


def test_create_search_update_and_validation(crm):
    created = crm.post(crm.base + "/contacts", json={"email": "Ann@X.test", "plan": "pro"})
    assert created.status_code == 201
    contact_id = created.json()["id"]
    found = crm.get(crm.base + "/contacts", params={"email": "ann@x.test"}).json()["results"]
    assert [c["id"] for c in found] == [contact_id]
    patched = crm.patch(f"{crm.base}/contacts/{contact_id}", json={"plan": "team"})
    assert patched.json()["plan"] == "team" and patched.json()["email"] == "Ann@X.test"
    assert crm.post(crm.base + "/contacts", json={"plan": "x"}).status_code == 422
    assert crm.post(crm.base + "/contacts", json=["x"]).status_code == 422
    assert crm.get(crm.base + "/contacts/c_999999").status_code == 404
    bad = crm.post(
        crm.base + "/contacts", data=b"{oops", headers={"Content-Type": "application/json"}
    )
    assert bad.status_code == 400


def test_an_update_that_changes_nothing_leaves_updated_at_alone(crm):
    contact = crm.post(crm.base + "/contacts", json={"email": "a@x.test"}).json()
    again = crm.patch(f"{crm.base}/contacts/{contact['id']}", json={"email": "a@x.test"}).json()
    assert again["updated_at"] == contact["updated_at"]


def test_the_idempotency_key_replays_the_first_create(crm):
    headers = {"Idempotency-Key": "k-1"}
    first = crm.post(crm.base + "/contacts", json={"email": "a@x.test"}, headers=headers)
    second = crm.post(crm.base + "/contacts", json={"email": "a@x.test"}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.json()["id"] == first.json()["id"]
    assert second.headers["Idempotent-Replayed"] == "true"
    other = crm.post(crm.base + "/contacts", json={"email": "b@x.test"}, headers=headers)
    assert other.status_code == 422
    assert SandboxContact.objects.count() == 1


def test_cursor_pagination_reads_every_contact_once(crm):
    SandboxContact.objects.bulk_create(
        SandboxContact(email=f"p{i}@x.test", data={"email": f"p{i}@x.test"}) for i in range(25)
    )
    seen, cursor, pages = [], None, 0
    while pages < 20:
        params = {"limit": 10, **({"cursor": cursor} if cursor else {})}
        page = crm.get(crm.base + "/contacts", params=params).json()
        seen += [c["id"] for c in page["results"]]
        pages += 1
        cursor = page.get("next_cursor")
        if not cursor:
            break
    assert pages == 3
    assert sorted(seen) == sorted(f"c_{c.pk}" for c in SandboxContact.objects.all())
    assert len(seen) == len(set(seen)) == 25
    assert crm.get(crm.base + "/contacts", params={"cursor": "%%%"}).status_code == 400


def test_faults_503_then_recover(crm):
    SandboxState.objects.update(fail_next=2)
    statuses = [crm.get(crm.base + "/me").status_code for _ in range(3)]
    assert statuses == [503, 503, 200]


def test_the_rate_limit_answers_429_with_retry_after(crm):
    SandboxState.objects.update(rate_limit=2, rate_window_seconds=60, retry_after_seconds=7)
    answers = [crm.get(crm.base + "/me") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].headers["Retry-After"] == "7"


def test_the_emitter_signs_with_standard_webhooks_and_the_hub_accepts_it(
    live_server, make_endpoint
):
    secret = new_signing_secret()
    make_endpoint("standard_webhooks", secret, slug="payments")
    event = payment_event(email="ada@example.test")
    url = f"{live_server.url}/webhooks/payments/"
    assert emit(url, secret, event).status_code == 202
    assert emit(url, secret, event).status_code == 200  # the same event again: a duplicate
    stored = WebhookEvent.objects.get()
    assert (stored.event_id, stored.event_type) == (event["id"], "payment.succeeded")
    forged = emit(url, new_signing_secret(), payment_event(email="eve@example.test"))
    assert forged.status_code == 401


def test_the_other_partners_keys_faults_idempotency_and_accounting_export(live_server):
    base = live_server.url + "/sandbox"
    keys = {}
    for service in ("invoicing", "booking"):
        keys[service] = secrets.token_urlsafe(16)
        SandboxState.objects.update_or_create(service=service, defaults={"api_key": keys[service]})
    invoicing = requests.Session()
    invoicing.headers["X-API-Key"] = keys["invoicing"]
    # each service has its own key: the booking tool's does not open the invoicing tool
    other = requests.get(
        base + "/invoicing/v1/invoices", headers={"X-API-Key": keys["booking"]}, timeout=5
    )
    assert other.status_code == 401
    # a create with a key, twice: one invoice, the first answer replayed; another body: 422
    first = invoicing.post(
        base + "/invoicing/v1/invoices", json={"amount": 4200}, headers={"Idempotency-Key": "k1"}
    )
    again = invoicing.post(
        base + "/invoicing/v1/invoices", json={"amount": 4200}, headers={"Idempotency-Key": "k1"}
    )
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert first.json()["status"] == "issued" and first.json()["id"].startswith("inv_")
    reused = invoicing.post(
        base + "/invoicing/v1/invoices", json={"amount": 1}, headers={"Idempotency-Key": "k1"}
    )
    assert reused.status_code == 422
    invoicing.post(base + "/invoicing/v1/credit_notes", json={"amount": 1000})
    export = invoicing.get(base + "/invoicing/v1/exports/accounting").json()
    assert [(line["kind"], line["amount"]) for line in export["lines"]] == [
        ("invoice", 4200),
        ("credit_note", -1000),
    ]
    assert export["total"] == 3200
    # its faults are its own: the invoicing tool fails, the booking tool answers
    SandboxState.objects.filter(service="invoicing").update(fail_next=1)
    assert invoicing.get(base + "/invoicing/v1/invoices").status_code == 503
    booking = requests.get(
        base + "/booking/v1/bookings", headers={"X-API-Key": keys["booking"]}, timeout=5
    )
    assert booking.status_code == 200 and booking.json() == {"results": []}
    assert invoicing.get(base + "/invoicing/v1/invoices").status_code == 200
    # a collection the tool does not have, and a body that is not JSON
    assert invoicing.get(base + "/invoicing/v1/bookings").status_code == 404
    bad = invoicing.post(base + "/invoicing/v1/invoices", data=b"{not json")
    assert bad.status_code == 400 and bad.json()["message"] == "the body is not valid JSON"
