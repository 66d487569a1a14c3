"""The brief's use cases as recipes (examples/recipes/), each applied as its file and run end to
end over real HTTP against the sandbox partners: signed webhooks in, the hub's flows out to the
sandbox's APIs, counted at the sandbox. The webhook recipes are processed by a real ``qcluster``
and sweeper; the form recipes come in through the REST API (the support requests without
waiting, carried by the same workers)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection as db_connection
from django.db.models import F

from api.models import ApiToken
from connectors.engine.circuit import reset
from connectors.models import Connection
from flows import iac
from flows.models import FlowRun, FlowRunStep
from flows.services import workflow
from sandbox.models import SandboxContact, SandboxRecord
from sandbox.recipes import (
    RECIPES,
    booking_scenario,
    payment_scenario,
    prepare,
    refund_scenario,
    signup_scenario,
    support_scenario,
)
from tests.processes import (
    hub_process_env,
    purge_queue,
    start,
    stop,
    wait_for,
)
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def recipe(live_server, monkeypatch):
    """Apply a recipe's file against the live server, its sandbox services ready."""

    def make(name: str):
        document, sandbox = prepare(name, live_server.url)
        for name_, value in sandbox.values.items():
            monkeypatch.setenv(name_, value)
        iac.apply_document(document)
        for connection in Connection.objects.all():
            reset(connection)
        return sandbox

    return make


@pytest.fixture
def workers():
    """A real cluster and sweeper sharing the test's database and broker."""
    purge_queue()
    env = hub_process_env(Q_WORKERS="2")
    processes = [
        start(["qcluster"], env),
        start(["webhooks", "sweep", "--loop", "--every", "1"], env),
    ]
    db_connection.close()
    yield
    for process in processes:
        stop(process)
    purge_queue()


def records(service: str, collection: str) -> list[dict]:
    rows = SandboxRecord.objects.filter(service=service, collection=collection).order_by("pk")
    return [row.as_json() for row in rows]


def token(scopes=("flows:run",)) -> str:
    _row, raw = ApiToken.issue(name="site", scopes=list(scopes))
    return raw


def test_every_recipe_applies_as_its_file():
    assert sorted(RECIPES) == ["booking", "double-opt-in", "payment", "refund", "support"]
    for recipe in RECIPES.values():
        assert recipe.path.exists(), recipe.path


def test_payment_verified_then_one_contact_tagged_and_one_invoice_for_five_deliveries(
    recipe, workers
):
    sandbox = recipe("payment")
    event, statuses = payment_scenario(sandbox, times=5)
    assert statuses[0] == 202 and set(statuses[1:]) == {200}  # duplicates acknowledged
    wait_for(lambda: records("invoicing", "invoices"), 60, "the invoice")
    stored = WebhookEvent.objects.get(event_id=event["id"])
    wait_for(lambda: WebhookEvent.objects.get(pk=stored.pk).status == "processed", 30, "processed")
    # one contact, tagged; one invoice, for the verified amount, linked to the contact
    [contact] = SandboxContact.objects.all()
    assert contact.email == "ada@example.test" and contact.data["tags"] == ["customer"]
    [invoice] = records("invoicing", "invoices")
    payment = event["data"]["object"]
    assert {
        k: invoice[k] for k in ("payment", "amount", "currency", "crm_contact", "customer")
    } == {
        "payment": payment["id"],
        "amount": payment["amount"],
        "currency": "eur",
        "crm_contact": f"c_{contact.pk}",
        "customer": "ada@example.test",
    }
    # only mapped fields left the hub: no card, no address
    assert "card" not in json.dumps(invoice) and "rue de la Paix" not in json.dumps(contact.data)
    run = FlowRun.objects.get(flow__slug="payment-crm-invoice")
    assert run.status == "succeeded"
    assert list(FlowRunStep.objects.filter(run=run).values_list("name", "status")) == [
        ("verify", "succeeded"),
        ("paid", "succeeded"),
        ("customer", "succeeded"),
        ("tag", "succeeded"),
        ("invoice", "succeeded"),
    ]
    # the accounting export lists it
    export = sandbox.call("invoicing", "GET", "/exports/accounting")
    assert export["total"] == payment["amount"] and export["lines"][0]["kind"] == "invoice"


def test_booking_confirmed_reminded_before_its_slot_and_none_when_cancelled(recipe, workers):
    sandbox = recipe("booking")
    kept, cancelled = booking_scenario(sandbox, ahead=timedelta(hours=24, seconds=6))

    def emails(booking):
        return [
            (e["template"], e["to"])
            for e in records("emailing", "emails")
            if e["booking"] == booking["id"]
        ]

    wait_for(lambda: len(emails(kept)) == 2, 60, "the confirmation and the reminder")
    assert emails(kept) == [
        ("booking-confirmed", "ada@example.test"),
        ("booking-reminder", "ada@example.test"),
    ]
    # the worker writes the step's end just after the partner's answer
    wait_for(
        lambda: FlowRun.objects.get(cancel_key=kept["id"]).status == "succeeded",
        30,
        "the run to end",
    )
    run = FlowRun.objects.get(cancel_key=kept["id"])
    assert run.status == "succeeded" and run.resume_at is not None
    # the booking cancelled before its reminder: confirmed, never reminded, and says who
    # cancelled it; it stays so past its reminder's time
    wait_for(
        lambda: FlowRun.objects.get(cancel_key=cancelled["id"]).status == "cancelled",
        30,
        "the cancellation",
    )
    other = FlowRun.objects.get(cancel_key=cancelled["id"])
    assert other.status == "cancelled" and other.cancelled_by.startswith("event booking.cancelled")
    assert emails(cancelled) == [("booking-confirmed", "bob@example.test")]
    assert workflow.resume_due() == 0


def test_double_opt_in_subscribes_the_confirmed_and_removes_the_unconfirmed(recipe, workers):
    sandbox = recipe("double-opt-in")
    answers = signup_scenario(sandbox, token())
    assert [a.status_code for a in answers] == [201, 201], [a.text for a in answers]
    # the confirmed webhook arrived, and a real worker processes it
    [confirmed] = WebhookEvent.objects.filter(event_type="contact.confirmed")
    wait_for(
        lambda: WebhookEvent.objects.get(pk=confirmed.pk).status == "processed", 60, "processed"
    )
    contacts = {c["email"]: c for c in records("emailing", "contacts")}
    assert contacts["ada@example.test"]["status"] == "subscribed"
    assert records("emailing", "members") == [
        {**records("emailing", "members")[0], "contact": contacts["ada@example.test"]["id"]}
    ]
    assert [e["to"] for e in records("emailing", "emails")] == [
        "ada@example.test",
        "bob@example.test",
    ]
    # both signups wait out their 7 days of grace, from the time the delay started
    signups = FlowRun.objects.filter(flow__slug="signup")
    grace = FlowRunStep.objects.filter(run__in=signups, name="grace")
    assert sorted(signups.values_list("status", flat=True)) == ["waiting", "waiting"]
    for step in grace:
        assert step.resume_at == step.run.resume_at == step.started_at + timedelta(days=7)
    # seven days pass for these runs (their delay started a week and a minute ago): the
    # sweeper queues them and the real workers carry them on, Bob's pending contact deleted
    week = timedelta(days=7, minutes=1)
    grace.update(started_at=F("started_at") - week, resume_at=F("resume_at") - week)
    signups.update(resume_at=F("resume_at") - week)
    wait_for(
        lambda: sorted(signups.values_list("status", flat=True)) == ["skipped", "succeeded"],
        60,
        "the signups to resume after their grace",
    )
    assert [c["email"] for c in records("emailing", "contacts")] == ["ada@example.test"]
    # Ada confirmed: her run stopped at the check; Bob's removed his contact
    assert {run.trigger_data["email"]: run.status for run in signups} == {
        "ada@example.test": "skipped",
        "bob@example.test": "succeeded",
    }


def test_support_requests_get_a_priority_and_only_urgent_ones_reach_the_chat(recipe, workers):
    sandbox = recipe("support")
    # the site's form does not wait: the hub's workers carry each request's run
    answers = support_scenario(sandbox, token(), wait=False)
    assert [a.status_code for a in answers] == [202, 202], [a.text for a in answers]
    runs = FlowRun.objects.filter(flow__slug="support-request")
    # the question's run stops at the urgency check: skipped
    wait_for(
        lambda: sorted(runs.values_list("status", flat=True)) == ["skipped", "succeeded"],
        60,
        "both requests' runs",
    )
    # (two workers: the tickets in either order)
    tickets = {t["subject"]: t for t in records("support", "tickets")}
    assert {(s, t["priority"], t["queue"]) for s, t in tickets.items()} == {
        ("The site is down", "urgent", "on-call"),
        ("Opening hours", "normal", "support"),
    }
    [message] = records("chat", "messages")
    assert (message["channel"], message["ticket"]) == (
        "#support-urgent",
        tickets["The site is down"]["id"],
    )
    # no personal data in the chat
    assert "ada@example.test" not in json.dumps(message) and "502" not in json.dumps(message)


def test_refund_issues_one_credit_note_and_updates_the_contact(recipe, workers):
    sandbox = recipe("refund")
    SandboxContact.objects.create(email="ada@example.test", data={"email": "ada@example.test"})
    event, statuses = refund_scenario(sandbox, times=2)
    assert statuses == [202, 200]
    wait_for(
        lambda: FlowRun.objects.filter(
            flow__slug="refund-credit-note", status="succeeded"
        ).exists(),
        60,
        "the refund's run",
    )
    [note] = records("invoicing", "credit_notes")
    assert (note["payment"], note["amount"]) == (
        event["data"]["object"]["id"],
        event["data"]["object"]["amount"],
    )
    [contact] = SandboxContact.objects.all()
    assert contact.data["refunded"] is True and contact.data["last_credit_note"] == note["id"]
    export = sandbox.call("invoicing", "GET", "/exports/accounting")
    assert export["total"] == -event["data"]["object"]["amount"]
