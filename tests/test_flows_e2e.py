"""End to end, over real HTTP on 127.0.0.1 with a real worker: the sandbox payment provider posts
signed events to the hub (a live server), a real qcluster runs the demo flow, and the sandbox
CRM (the same live server) receives the upserts.

The setup is examples/demo.yaml itself, applied with ``integrations apply`` (URLs pointed at
the live server)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest
from django.db import connection as db_connection

from connectors.models import ApiCall
from flows.models import FlowRun
from sandbox.emitter import emit, payment_event
from sandbox.models import SandboxContact, SandboxRequest, SandboxState
from tests.processes import (
    ROOT,
    free_port,
    hub_process_env,
    purge_queue,
    start,
    stop,
    wait_for,
)
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db(transaction=True)

FLOW = "payment-succeeded-upsert-contact"
MAPPED = {"email", "first_name", "last_name", "phone", "tags"}


@pytest.fixture
def worker(tmp_path):
    """A real qcluster and sweeper on the test database, with a short retry schedule."""
    purge_queue()
    env = hub_process_env(Q_WORKERS="2", HUB_WEBHOOK_RETRY_SCHEDULE="1,1,1,2,2,2")
    cluster = start(["qcluster"], env)
    sweeper = start(["webhooks", "sweep", "--loop", "--every", "1"], env)
    db_connection.close()
    yield
    stop(sweeper)
    stop(cluster)


def processed(event_id: str, status: str = "processed", timeout: float = 60) -> WebhookEvent:
    def done():
        event = WebhookEvent.objects.filter(event_id=event_id).first()
        return event if event is not None and event.status == status else None

    return wait_for(done, timeout, f"event {event_id} to be {status}")


def writes():
    return list(SandboxRequest.objects.exclude(method="GET").order_by("pk"))


def test_a_signed_payment_creates_exactly_one_contact_with_exactly_the_mapped_fields(
    demo, worker, operator_client
):
    event = payment_event(email="Ada.Lovelace@Example.test", name="ada lovelace")
    response = emit(demo.url, demo.secret, event)
    assert response.status_code == 202, response.text

    stored = processed(event["id"])

    contact = SandboxContact.objects.get()
    assert contact.data == {
        "email": "ada.lovelace@example.test",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "phone": "+33612345678",
        "tags": ["customer"],
    }
    # the partner received the mapped fields and nothing else: no card, address or order
    [create] = writes()
    assert create.method == "POST" and set(create.body) == MAPPED
    sent = json.dumps([r.body for r in SandboxRequest.objects.all()])
    for unmapped in ("4242", "rue de la Paix", "ord_", "visa"):
        assert unmapped not in sent
    assert create.idempotency_key == f"flow:{FLOW}:payments:{event['id']}"
    run = FlowRun.objects.get()
    assert (run.status, run.outcome, run.record_id) == ("succeeded", "created", f"c_{contact.pk}")
    assert run.event_id == stored.pk and run.correlation_id == stored.correlation_id
    calls = ApiCall.objects.filter(correlation_id=stored.correlation_id).order_by("pk")
    assert [(c.method, c.status_code) for c in calls] == [("GET", 200), ("POST", 201)]
    # the event's page links its flow run; the run's page links the event and its API calls
    event_page = operator_client.get(f"/admin/webhooks/webhookevent/{stored.pk}/change/")
    assert f"/admin/flows/flowrun/{run.pk}/change/" in event_page.content.decode()
    run_page = operator_client.get(f"/admin/flows/flowrun/{run.pk}/change/").content.decode()
    assert f"/admin/webhooks/webhookevent/{stored.pk}/change/" in run_page
    assert f"?q={run.correlation_id}" in run_page


def test_the_same_event_delivered_five_times_at_once_gives_one_contact(demo, worker):
    event = payment_event(email="grace@example.test", name="Grace Hopper")
    barrier = threading.Barrier(5)
    statuses = []

    def deliver():
        barrier.wait()
        statuses.append(emit(demo.url, demo.secret, event).status_code)

    threads = [threading.Thread(target=deliver) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(statuses) == [200, 200, 200, 200, 202]
    processed(event["id"])
    assert SandboxContact.objects.count() == 1
    assert len(writes()) == 1


def test_different_events_for_the_same_customer_at_once_still_give_one_contact(demo, worker):
    events = [payment_event(email="katherine@example.test", name="Katherine Johnson")]
    events += [payment_event(email="katherine@example.test", name="Katherine Johnson")]
    events += [payment_event(email="KATHERINE@example.test ", name="Katherine Johnson")]
    barrier = threading.Barrier(len(events))
    statuses = []

    def deliver(event):
        barrier.wait()
        statuses.append(emit(demo.url, demo.secret, event).status_code)

    threads = [threading.Thread(target=deliver, args=(e,)) for e in events]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert statuses == [202, 202, 202]
    for event in events:
        processed(event["id"])
    assert SandboxContact.objects.count() == 1
    outcomes = sorted(FlowRun.objects.filter(status="succeeded").values_list("outcome", flat=True))
    assert outcomes == ["created", "unchanged", "unchanged"]


def test_a_crm_failing_with_503_for_a_while_is_retried_then_one_contact(demo, worker):
    state = SandboxState.get()
    # more than one event attempt's worth of engine retries (3 calls each), fewer than the
    # circuit breaker's threshold (5), which would pause the connection for its cooldown
    state.fail_next = 4
    state.save()
    event = payment_event(email="margaret@example.test", name="Margaret Hamilton")
    assert emit(demo.url, demo.secret, event).status_code == 202

    stored = processed(event["id"], timeout=90)

    assert SandboxContact.objects.count() == 1
    outcomes = list(stored.attempt_log.values_list("outcome", flat=True))
    assert outcomes[0] == "retry" and outcomes[-1] == "processed"
    statuses = list(FlowRun.objects.order_by("pk").values_list("status", flat=True))
    assert statuses[0] == "retrying" and statuses[-1] == "succeeded"
    answered_503 = SandboxRequest.objects.filter(status=503).count()
    assert answered_503 == 4
    assert SandboxRequest.objects.filter(method="POST", status=201).count() == 1


def test_a_replay_from_the_admin_changes_nothing_at_the_partner(
    demo, worker, integration_admin_client
):
    event = payment_event(email="barbara@example.test", name="Barbara Liskov")
    assert emit(demo.url, demo.secret, event).status_code == 202
    stored = processed(event["id"])
    contact = SandboxContact.objects.get()
    before = (contact.data, contact.updated_at, len(writes()))

    url = f"/admin/webhooks/webhookevent/{stored.pk}/replay/"
    page = integration_admin_client.post(url)
    assert b"idempotent" in page.content  # the confirmation says why replaying is safe
    integration_admin_client.post(url, {"confirm": "yes"})

    wait_for(
        lambda: FlowRun.objects.filter(status="succeeded").count() == 2,
        60,
        "the replayed run",
    )
    processed(event["id"])
    contact.refresh_from_db()
    assert (contact.data, contact.updated_at, len(writes())) == before
    assert FlowRun.objects.order_by("-pk").first().outcome == "unchanged"


def test_a_mapping_error_fails_the_event_with_the_rule_named(demo, worker):
    event = payment_event(email="", name="Nobody")
    assert emit(demo.url, demo.secret, event).status_code == 202

    stored = processed(event["id"], status="failed")

    assert (
        "rule 1 (data.object.customer.email → email): required field "
        '"data.object.customer.email" is empty'
    ) in stored.last_error
    assert list(stored.attempt_log.values_list("outcome", flat=True)) == ["failed"]
    run = FlowRun.objects.get()
    assert run.status == "failed" and "rule 1" in run.error
    assert writes() == [] and SandboxContact.objects.count() == 0


def test_make_demo_shows_processed_deduplicated_retried_and_recovered_events(tmp_path):
    """``manage.py demo`` as a real process (what ``make demo`` runs after the bootstrap), on
    this test run's database: within a minute and a half every payment is processed, the
    duplicate delivery is stored once, the burst sent while the CRM answered 503 was retried
    and recovered, and the CRM holds one contact per customer."""
    purge_queue()
    port = free_port()
    log = (tmp_path / "demo.log").open("w")
    env = hub_process_env(SANDBOX_ENABLED="true", Q_WORKERS="2")
    demo = subprocess.Popen(
        [sys.executable, "manage.py", "demo", "--addrport", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    db_connection.close()
    try:
        wait_for(lambda: WebhookEvent.objects.count() >= 9, 60, "the demo's 9 payments")
        try:
            wait_for(
                lambda: not WebhookEvent.objects.exclude(status="processed").exists(),
                90,
                "every demo event to be processed",
            )
        except AssertionError as exc:
            states = list(WebhookEvent.objects.values_list("status", "attempts", "last_error"))
            raise AssertionError(f"{exc}: {states}") from None
    finally:
        stop(demo)
        log.close()
    output = (tmp_path / "demo.log").read_text()
    assert "(duplicate): 200" in output, output
    assert WebhookEvent.objects.count() == 9  # 9 payments; the duplicate delivery not stored
    assert WebhookEvent.objects.filter(attempts__gt=1).count() >= 1  # the burst was retried
    emails = sorted(SandboxContact.objects.values_list("email", flat=True))
    assert emails == sorted(
        ["ada@example.test", "grace@example.test", "alan@example.test"]
        + [f"burst{i}@example.test" for i in range(5)]
    )
