"""The GDPR desk, end to end over real HTTP: a person who paid (a signed event from the sandbox
payment provider, processed by the demo flow into the sandbox CRM, then mirrored by the demo
sync) is found in every place the hub stores data, exported, and erased; after that, the
database dump holds none of their values, and the other events still deduplicate and run."""

from __future__ import annotations

import json
import subprocess

import pytest
from django.conf import settings
from django.db import connection as db_connection
from django.urls import reverse

from connectors.choices import AuditAction
from connectors.models import ApiCall, AuditEntry, Connection
from connectors.roles import AUDITORS, DATA_PROTECTION, OPERATORS
from flows.models import Flow, FlowCancellation, FlowRun, Mapping, MappingRule
from governance.gdpr import ERASURE_EVENT, PLACES, Subject
from sandbox.emitter import emit, payment_event
from sandbox.models import SandboxContact, SandboxRequest
from sandbox.services import store_payment
from syncs.models import MirrorRecord, SyncRun
from syncs.services.runner import run_job
from webhooks.models import EventAttempt, WebhookEvent
from webhooks.services import processing

EMAIL = "Ines.Quintavalle@Example.test"
PHONE = "06 98 76 54 32"
OTHER = "bob.marchetti@example.test"


def delivered(demo, **person) -> WebhookEvent:
    event = payment_event(**person)
    store_payment(event)  # the provider's own record of the payment it notifies
    response = emit(demo.url, demo.secret, event)
    assert response.status_code == 202, response.text
    stored = WebhookEvent.objects.get(event_id=event["id"])
    outcome = processing.process_event(stored.pk)
    stored.refresh_from_db()
    assert outcome == "processed", stored.last_error
    return stored


def database_dump() -> str:
    """Every stored byte, as the database's own dump tool writes it."""
    if db_connection.vendor == "sqlite":
        return "\n".join(db_connection.connection.iterdump())
    db = settings.DATABASES["default"]
    where = ["-h", db["HOST"], "-p", str(db["PORT"] or 5432), "-U", db["USER"]]
    return subprocess.run(
        ["pg_dump", "--data-only", *where, db["NAME"]],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def traces(dump: str, *values: str) -> list[str]:
    """The values found in the dump as text or as hex (how both dumps write binary columns)."""
    lowered = dump.lower()
    return [v for v in values if v.lower() in lowered or v.lower().encode().hex() in lowered]


@pytest.mark.django_db(transaction=True)
def test_one_person_is_found_everywhere_exported_and_erased_and_nothing_else_breaks(
    demo, role_client, caplog
):
    # given the person's payment processed into the CRM, mirrored, and a few errors naming them
    event = delivered(demo, email=EMAIL, name="ines quintavalle", phone=PHONE)
    other = delivered(demo, email=OTHER, name="bob marchetti", phone="06 23 45 67 89")
    run = run_job("crm-contacts-nightly")
    assert run.status == "succeeded", run.message
    mine = MirrorRecord.objects.get(data__email=EMAIL.lower())
    EventAttempt.objects.create(
        event=event, number=9, outcome="failed", error=f"422: {EMAIL.lower()} is not valid"
    )
    FlowRun.objects.filter(event=event).update(error=f"the CRM refused {EMAIL.lower()}")
    SyncRun.objects.filter(pk=run.pk).update(
        errors=[{"record": mine.external_id, "error": f"{EMAIL} is a duplicate"}]
    )
    # and a flow that deletes the person's contact at the CRM when the hub erases them
    erasure_flow = Flow.objects.create(
        slug="erasure-delete-contact",
        name="Erasure → delete the CRM contact",
        trigger="webhook",
        endpoint=event.endpoint,
        event_type=ERASURE_EVENT,
        condition=[{"path": "connection", "op": "eq", "value": "sandbox-crm"}],
        connection=Connection.objects.get(slug="sandbox-crm"),
        mapping=Mapping.objects.create(slug="erasure-ids", name="ids"),
        method="DELETE",
        path="/contacts/{id}",
    )
    MappingRule.objects.create(mapping=erasure_flow.mapping, source="external_id", target="id")
    # and a workflow that looked the person up at the CRM and waits a week to follow up
    from flows.services.runner import run_flow

    follow_up = Flow.objects.create(
        slug="follow-up",
        name="Follow up in a week",
        trigger="manual",
        connection=Connection.objects.get(slug="sandbox-crm"),
        steps=[
            {"name": "look_up", "kind": "fetch", "path": "/contacts?email={trigger.email}"},
            {"name": "wait", "kind": "delay", "for": "7d"},
        ],
    )
    waiting = run_flow(follow_up, {"email": EMAIL.lower()}, trigger="manual", trigger_ref="f-1")
    assert waiting.run.status == "waiting"
    # and a cancellation kept for a run of theirs that has not started yet (out of order)
    FlowCancellation.objects.create(
        flow=follow_up, key=EMAIL.lower(), cancelled_by="event signup.withdrawn (signups:w-1)"
    )
    dpo = role_client(DATA_PROTECTION)
    desk = reverse("governance_gdpr")

    # when the DPO looks for the person by email: every place holds them
    page = dpo.post(desk, {"kind": "email", "value": EMAIL.upper()})
    assert page.status_code == 200
    counts = {label: count for label, count, _rows in page.context["places"]}
    assert all(counts[place.label] >= 1 for place in PLACES), counts
    # the phone number (written another way) and the CRM's id find them too
    by_phone = dpo.post(desk, {"kind": "phone", "value": "+33 6 98 76 54 32"}).context["places"]
    assert {label for label, count, _rows in by_phone if count} >= {
        "Webhook events (stored bodies and headers)",
        "Sandbox CRM contacts",
    }
    by_id = dpo.post(desk, {"kind": "external_id", "value": mine.external_id}).context["places"]
    assert dict((label, c) for label, c, _r in by_id)["Mirrored records (syncs)"] == 1

    # the export is one JSON document holding what was found, and leaves a receipt
    export = dpo.post(desk, {"kind": "email", "value": EMAIL, "action": "export"})
    assert export["Content-Type"] == "application/json"
    document = json.loads(export.content)
    assert document["counts"]["webhook_events"] == 1
    [found] = document["places"]["webhook_events"]["rows"]
    assert found["event_id"] == event.event_id
    assert {
        "where": "body.data.object.customer",
        "value": {
            "email": EMAIL,
            "first_name": "ines",
            "last_name": "quintavalle",
            "phone": PHONE,
            "address": {"line1": "1 rue de la Paix", "city": "Paris", "country": "FR"},
        },
    } in found["found"]

    # an erasure not confirmed erases nothing
    refused = dpo.post(desk, {"kind": "email", "value": EMAIL, "action": "erase"})
    assert "Tick the confirmation" in refused.content.decode()
    assert EMAIL.lower() in database_dump().lower()

    # when erased
    erased = dpo.post(desk, {"kind": "email", "value": EMAIL, "action": "erase", "confirm": "yes"})
    assert erased.status_code == 200 and erased.context["erased_total"] >= 9
    assert erased.context["total"] == 0  # found again right after: nothing left
    # the waiting workflow will not follow up with "[erased]"
    waiting.run.refresh_from_db()
    assert waiting.run.status == "cancelled" and "GDPR" in waiting.run.cancelled_by

    # then no stored byte holds their email, name or phone; the other person is intact
    dump = database_dump()
    assert traces(dump, EMAIL, "quintavalle", "98 76 54 32", "698765432") == []
    assert traces(dump, OTHER, "marchetti") == [OTHER, "marchetti"]
    # the tombstone keeps ids, hashes and statuses
    event.refresh_from_db()
    assert (event.status, event.redaction) == ("processed", "erasure")
    customer = event.payload()["data"]["object"]["customer"]
    assert customer["email"] == "[erased]" and customer["address"]["city"] == "[erased]"
    assert event.payload()["data"]["object"]["amount"] == 4200
    mine.refresh_from_db()
    assert mine.external_id and mine.data["email"] == "[erased]" and mine.content_hash
    assert ApiCall.objects.filter(path="/contacts?email=[erased]").exists()
    # the receipt says who, what and how many, never the value
    [receipt] = AuditEntry.objects.filter(action=AuditAction.PERSONAL_DATA_ERASED)
    assert (
        receipt.pk == erased.context["receipt"] and receipt.actor_name == "data_protection_officers"
    )
    assert "rows" in receipt.detail and EMAIL.lower() not in receipt.detail.lower()
    assert AuditEntry.objects.filter(action=AuditAction.PERSONAL_DATA_EXPORTED).count() == 1

    # the partner is asked to erase the person too: one internal event per partner record,
    # carrying its ids only, processed as any event (once), which deletes the CRM contact
    [request] = WebhookEvent.objects.filter(event_type=ERASURE_EVENT)
    assert request.payload() == {
        "type": ERASURE_EVENT,
        "receipt": receipt.pk,
        "connection": "sandbox-crm",
        "object_type": "contact",
        "external_id": mine.external_id,
        "found_by": "mirrored record",
    }
    assert "erasure requested through 1" in receipt.detail
    assert processing.process_event(request.pk) == "processed"
    assert not SandboxContact.objects.filter(pk=int(mine.external_id[2:])).exists()
    assert (
        SandboxRequest.objects.filter(method="DELETE", path__endswith=mine.external_id).count() == 1
    )
    assert processing.process_event(request.pk) == "skipped"  # done once

    # dedupe still holds (the same delivery again is a duplicate), the erased event never runs
    # again, and other events still run
    again = emit(
        demo.url, demo.secret, {**payment_event(email="x@example.test"), "id": event.event_id}
    )
    assert again.status_code in (200, 202)
    assert WebhookEvent.objects.filter(event_id=event.event_id).count() == 1
    assert processing.retry_now(event) is False and processing.replay(event) is False
    delivered(demo, email="carla.new@example.test", name="carla new")
    assert processing.replay(other) and processing.process_event(other.pk) == "processed"
    # and no log line ever named them (the lookup's query is logged by its parameter names)
    assert "api call GET /contacts?email=… -> 200" in caplog.text
    assert traces(caplog.text, EMAIL, "ines.quintavalle%40", "quintavalle") == []


@pytest.mark.django_db
def test_the_desk_reads_in_french(role_client):
    dpo = role_client(DATA_PROTECTION)
    dpo.post("/i18n/setlang/", {"language": "fr", "next": "/admin/"})
    page = dpo.post(reverse("governance_gdpr"), {"kind": "email", "value": EMAIL}).content
    assert "0 ligne contient cette personne" in page.decode()
    assert "Retrouvez une personne dans tout ce que le hub conserve" in page.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("role", [OPERATORS, AUDITORS])
def test_only_the_desk_permission_opens_the_desk(role_client, role):
    client = role_client(role)
    assert client.get(reverse("governance_gdpr")).status_code == 403
    assert (
        client.post(reverse("governance_gdpr"), {"kind": "email", "value": EMAIL}).status_code
        == 403
    )


def test_the_identifier_is_matched_however_it_is_written_and_only_where_it_is():
    email = Subject.parse("email", " Ada@Example.TEST ")
    assert email.value == "ada@example.test"
    assert email.redact("GET /contacts?email=ada%40example.test") == "GET /contacts?email=[erased]"
    assert not email.occurs("nada@example.test") and not email.occurs("ada@example.testing")
    phone = Subject.parse("phone", "+33 6 12 34 56 78")
    assert phone.matches("06.12.34.56.78") and phone.matches(33612345678)
    assert not phone.matches("06 12 34 56 79")
    assert phone.redact("call 06-12-34-56-78 today") == "call [erased] today"
    for kind, value in [("email", "not-an-address"), ("phone", "12 34"), ("nickname", "x")]:
        with pytest.raises(ValueError):
            Subject.parse(kind, value)
