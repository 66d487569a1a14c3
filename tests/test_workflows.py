"""Workflows of several steps over real HTTP (the scripted partner): each step exactly once
across retries, a run resuming at its failed step, conditions that stop or skip, delays that
wait without a worker and resume on time, cancellation by a later event, and the checks that
name a wrong step's place. The last test kills a real ``qcluster`` between two steps."""

from __future__ import annotations

import json
import secrets as pysecrets
from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.utils import timezone

from connectors.engine.errors import RetryableError
from connectors.models import ApiCall
from flows import tasks as flow_tasks
from flows.models import Flow, FlowCancellation, FlowRun, FlowRunStep, Mapping, MappingRule
from flows.services import workflow
from flows.services.runner import mark_interrupted, run_flow
from flows.steps.python import HANDLERS, step_handler
from tests import signing
from tests.partners import Reply
from tests.processes import (
    purge_queue,
    restart_until_processed,
)
from tests.test_run_rows import killed_at_second_call
from webhooks.services.processing import process_event

pytestmark = pytest.mark.django_db(transaction=True)

VERIFY = {"name": "verify", "kind": "fetch", "path": "/payments/{trigger.id}"}
PAID = {
    "name": "paid",
    "kind": "condition",
    "when": [{"path": "steps.verify.data.status", "op": "eq", "value": "succeeded"}],
}
INVOICE = {"name": "invoice", "kind": "call", "path": "/invoices", "mapping": "to-invoice"}


def invoice_mapping() -> Mapping:
    mapping = Mapping.objects.create(slug="to-invoice", name="to invoice")
    MappingRule.objects.create(
        mapping=mapping, position=1, source="steps.verify.data.amount", target="amount"
    )
    MappingRule.objects.create(
        mapping=mapping, position=2, source="email", target="email", pii=True
    )
    return mapping


def workflow_flow(connection, steps, **fields) -> Flow:
    flow = Flow(
        slug=fields.pop("slug", "wf"),
        name="wf",
        trigger=fields.pop("trigger", "manual"),
        connection=connection,
        steps=steps,
        **fields,
    )
    flow.full_clean()
    flow.save()
    return flow


def go(flow, payload, ref="t-1"):
    return run_flow(flow, payload, trigger="manual", trigger_ref=ref)


def step_rows(run) -> list[tuple[str, str, int]]:
    return list(
        FlowRunStep.objects.filter(run=run)
        .order_by("position")
        .values_list("name", "status", "attempts")
    )


def test_each_step_runs_once_and_a_retry_resumes_at_the_failed_step(api_connection, partner):
    invoice_mapping()
    flow = workflow_flow(api_connection, [VERIFY, PAID, INVOICE])
    partner.script(
        Reply(200, json={"id": "pay_1", "status": "succeeded", "amount": 4200, "card": "4242"}),
        *[Reply(503)] * 4,  # the invoice's four attempts within the first run
        Reply(201, json={"id": "inv_1"}),
    )
    payload = {"id": "pay_1", "email": "ada@example.test", "address": "not sent"}
    with pytest.raises(RetryableError):
        go(flow, payload)
    run = FlowRun.objects.get()
    assert run.status == "retrying" and run.current_step == "invoice"
    assert step_rows(run) == [
        ("verify", "succeeded", 1),
        ("paid", "succeeded", 1),
        ("invoice", "retrying", 1),
    ]
    # the retry (the event's, or a replay) reads the verified payment instead of fetching it
    result = go(flow, payload)
    assert result.run.pk == run.pk
    run.refresh_from_db()
    assert (run.status, run.outcome, run.record_id, run.attempts) == (
        "succeeded",
        "called",
        "inv_1",
        2,
    )
    assert step_rows(run)[2] == ("invoice", "succeeded", 2)
    methods = [(r.method, r.path) for r in partner.requests]
    assert methods == [("GET", "/v1/payments/pay_1")] + [("POST", "/v1/invoices")] * 5
    posts = [r for r in partner.requests if r.method == "POST"]
    assert {r.headers["Idempotency-Key"] for r in posts} == {"flow:wf:t-1:invoice"}
    # only the mapped fields left the hub, the earlier step's amount among them
    assert json.loads(posts[-1].body) == {"amount": 4200, "email": "ada@example.test"}
    invoice = FlowRunStep.objects.get(run=run, name="invoice")
    assert invoice.sent == {"amount": 4200, "email": "ada@example.test"}
    assert invoice.result["record_id"] == "inv_1"
    # and a third delivery of the same trigger changes nothing
    go(flow, payload)
    assert len(partner.requests) == 6 and FlowRun.objects.count() == 1


def test_a_condition_stops_the_run_or_skips_the_next_step(api_connection, partner):
    invoice_mapping()
    flow = workflow_flow(api_connection, [VERIFY, PAID, INVOICE])
    partner.script(Reply(200, json={"status": "requires_payment_method", "amount": 1}))
    run = go(flow, {"id": "pay_2", "email": "b@example.test"}).run
    assert run.status == "skipped"
    assert run.error == (
        "condition paid not met: steps.verify.data.status eq 'succeeded' does not hold (present)"
    )
    assert step_rows(run)[1:] == [("paid", "succeeded", 1), ("invoice", "skipped", 0)]
    assert [r.method for r in partner.requests] == ["GET"]
    # "skip" passes over the next step and goes on with the one after it
    skip = {**PAID, "name": "skip_if_unpaid", "otherwise": "skip"}
    then = {"name": "notify", "kind": "call", "path": "/notes", "method": "POST"}
    flow.steps = [VERIFY, skip, INVOICE, then]
    flow.full_clean()
    flow.save()
    partner.script(Reply(200, json={"status": "failed"}), Reply(201, json={"id": "n_1"}))
    run = go(flow, {"id": "pay_3", "email": "c@example.test"}, ref="t-2").run
    assert run.status == "succeeded"
    assert [s for _n, s, _a in step_rows(run)] == ["succeeded", "succeeded", "skipped", "succeeded"]
    assert [r.path for r in partner.requests[1:]] == ["/v1/payments/pay_3", "/v1/notes"]


def test_a_delay_waits_without_a_worker_and_resumes_on_time(api_connection, partner):
    from django_q.brokers import get_broker

    flow = workflow_flow(
        api_connection,
        [
            {"name": "day_before", "kind": "delay", "until": "{slot} - 24h"},
            {"name": "remind", "kind": "call", "path": "/reminders/{trigger.booking}"},
        ],
    )
    purge_queue()
    slot = timezone.now().replace(microsecond=0) + timedelta(days=2)
    run = go(flow, {"booking": "b_1", "slot": slot.isoformat()}).run
    assert (run.status, run.resume_at, run.lease_until) == (
        "waiting",
        slot - timedelta(days=1),
        None,
    )
    assert step_rows(run) == [("day_before", "waiting", 1)]
    assert workflow.resume_due() == 0 and get_broker().queue_size() == 0
    assert partner.requests == []
    partner.script(Reply(201, json={"id": "r_1"}))
    with time_machine.travel(slot - timedelta(days=1, seconds=-1), tick=True):
        assert workflow.resume_due() == 1
        assert workflow.resume_due() == 0  # taken once: a second pass queues nothing
        assert get_broker().queue_size() == 1
        assert workflow.resume_run(run.pk) == "succeeded"
    run.refresh_from_db()
    assert step_rows(run) == [("day_before", "succeeded", 1), ("remind", "succeeded", 1)]
    assert [(r.method, r.path) for r in partner.requests] == [("POST", "/v1/reminders/b_1")]
    purge_queue()


def test_due_runs_resume_in_chunks_each_carried_by_the_pass_that_took_it(
    api_connection, partner, settings
):
    """Runs due at the same moment are queued a chunk per task, so that every worker gets one;
    a run whose lease ran out and that a later pass took again is carried by the later task
    only; a task past its budget gives the rest back to the next pass."""
    from django_q.brokers import get_broker
    from django_q.signing import SignedPackage

    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "workers": 3}
    flow = workflow_flow(
        api_connection,
        [
            {"name": "wait", "kind": "delay", "for": "1h"},
            {"name": "remind", "kind": "call", "path": "/reminders/{trigger.n}"},
        ],
    )
    purge_queue()
    runs = [go(flow, {"n": n}, ref=f"t-{n}").run.pk for n in range(7)]
    partner.script(Reply(201, json={"id": "r"}))
    broker = get_broker()
    with time_machine.travel(timezone.now() + timedelta(hours=1, seconds=1), tick=True):
        assert workflow.resume_due() == 7
        assert workflow.resume_due() == 0
        tasks = []
        for _ in range(10):  # a blocking dequeue waits a second at most on Redis
            tasks += [SignedPackage.loads(package) for _id, package in broker.dequeue() or ()]
            if len(tasks) == 3:
                break
        assert broker.queue_size() == 0
        assert {task["func"] for task in tasks} == {"flows.tasks.resume_runs"}
        chunks = sorted(task["args"][0] for task in tasks)
        assert chunks == [runs[0:3], runs[3:6], runs[6:7]]
        lease = tasks[0]["args"][1]
        assert FlowRun.objects.filter(pk__in=runs, lease_until=lease).count() == 7
        # the first chunk's task stops after one run (its budget spent): two go back to waiting
        first = next(task["args"] for task in tasks if task["args"][0] == runs[0:3])
        assert workflow.resume_runs(*first, budget=0) == "1 succeeded, 2 given back"
        assert FlowRun.objects.get(pk=runs[1]).status == "waiting"
        assert workflow.resume_due() == 2
        purge_queue()
        # the last chunk's lease runs out before a worker takes it: the sweeper marks the run
        # interrupted and a later pass takes it again; the first task, late, carries nothing
        late = next(task["args"] for task in tasks if task["args"][0] == runs[6:7])
        FlowRun.objects.filter(pk=runs[6]).update(lease_until=timezone.now() - timedelta(seconds=1))
        assert mark_interrupted() == 1
        assert workflow.resume_due() == 1
        assert workflow.resume_runs(*late) == "1 nothing to resume"
        assert [r.path for r in partner.requests] == ["/v1/reminders/0"]
        ((_id, package),) = broker.dequeue()
        again = SignedPackage.loads(package)["args"]
        assert again[0] == runs[6:7] and again[1] != late[1]
        assert workflow.resume_runs(*again) == "1 succeeded"
    assert [r.path for r in partner.requests] == ["/v1/reminders/0", "/v1/reminders/6"]
    purge_queue()


def test_a_chunk_the_broker_refuses_goes_back_to_waiting(api_connection, monkeypatch, caplog):
    import django_q.tasks

    from tests.processes import dead_redis_broker

    flow = workflow_flow(api_connection, [{"name": "wait", "kind": "delay", "for": "1h"}])
    purge_queue()
    run = go(flow, {}).run
    down = dead_redis_broker()
    monkeypatch.setattr(django_q.tasks, "get_broker", lambda *args: down)
    with time_machine.travel(timezone.now() + timedelta(hours=1, seconds=1), tick=True):
        assert workflow.resume_due() == 0
        assert "could not queue the resumption of 1 flow run(s)" in caplog.text
        run.refresh_from_db()
        assert (run.status, run.lease_until) == ("waiting", None)  # due again, not "lost"
        monkeypatch.undo()
        assert workflow.resume_due() == 1
        run.refresh_from_db()
        assert run.status == "running"
    purge_queue()


def test_a_later_event_cancels_the_pending_reminder(client, make_endpoint, api_connection, partner):
    secret = pysecrets.token_hex(20)
    endpoint = make_endpoint("github", secret, slug="bookings")
    flow = workflow_flow(
        api_connection,
        [
            {"name": "confirm", "kind": "call", "path": "/emails/{trigger.booking.id}"},
            {"name": "wait", "kind": "delay", "for": "2h"},
            {"name": "remind", "kind": "call", "path": "/reminders/{trigger.booking.id}"},
        ],
        trigger="webhook",
        endpoint=endpoint,
        event_type="booking.created",
        correlation_key="booking.id",
        cancel_event_type="booking.cancelled",
    )
    partner.script(Reply(201, json={"id": "m_1"}))

    def deliver(delivery, event_type, body):
        raw = json.dumps(body).encode()
        headers = signing.github_headers(raw, secret, delivery)
        headers["X-GitHub-Event"] = event_type
        response = client.post(
            "/webhooks/bookings/", data=raw, content_type="application/json", headers=headers
        )
        assert response.status_code == 202, response.content
        return process_event(response.json()["event"])

    assert deliver("d-1", "booking.created", {"booking": {"id": "bk_9"}}) == "processed"
    run = FlowRun.objects.get(flow=flow)
    assert run.status == "waiting" and run.cancel_key == "bk_9"
    assert deliver("d-2", "booking.cancelled", {"booking": {"id": "bk_9"}}) == "processed"
    run.refresh_from_db()
    assert run.status == "cancelled"
    assert run.cancelled_by == "event booking.cancelled (bookings:d-2)"
    assert step_rows(run) == [("confirm", "succeeded", 1), ("wait", "cancelled", 1)]
    with time_machine.travel(timezone.now() + timedelta(hours=3), tick=True):
        assert workflow.resume_due() == 0
    assert [r.path for r in partner.requests] == ["/v1/emails/bk_9"]  # no reminder
    # a cancellation of a booking no run is about is handled and cancels nothing
    assert deliver("d-3", "booking.cancelled", {"booking": {"id": "bk_other"}}) == "processed"
    assert FlowRun.objects.filter(flow=flow).count() == 1
    # out of order: a booking's cancellation processed before its creation still cancels the
    # run that creation starts, before its first step
    assert deliver("d-4", "booking.cancelled", {"booking": {"id": "bk_7"}}) == "processed"
    assert deliver("d-5", "booking.created", {"booking": {"id": "bk_7"}}) == "processed"
    early = FlowRun.objects.get(flow=flow, cancel_key="bk_7")
    assert early.status == "cancelled"
    assert early.cancelled_by == "event booking.cancelled (bookings:d-4)"
    assert step_rows(early) == []
    assert [r.path for r in partner.requests] == ["/v1/emails/bk_9"]
    # a day on, a cancellation no longer applies to runs that start, and the purge removes it
    with time_machine.travel(timezone.now() + timedelta(days=1, minutes=1), tick=True):
        assert deliver("d-6", "booking.created", {"booking": {"id": "bk_other"}}) == "processed"
        assert FlowRun.objects.get(flow=flow, cancel_key="bk_other").status == "waiting"
        assert FlowCancellation.objects.count() == 3
        flow_tasks.purge_old_runs()
        assert not FlowCancellation.objects.exists()


def test_a_python_step_reads_earlier_results_and_feeds_the_next(api_connection, partner):
    if "priority" not in HANDLERS:

        @step_handler("priority")
        def priority(ctx):
            return {"priority": "urgent" if "down" in ctx.data["message"] else "normal"}

    mapping = Mapping.objects.create(slug="ticket", name="ticket")
    MappingRule.objects.create(mapping=mapping, position=1, source="message", target="subject")
    MappingRule.objects.create(
        mapping=mapping, position=2, source="steps.rules.data.priority", target="priority"
    )
    flow = workflow_flow(
        api_connection,
        [
            {"name": "rules", "kind": "python", "handler": "priority"},
            {"name": "ticket", "kind": "call", "path": "/tickets", "mapping": "ticket"},
        ],
    )
    partner.script(Reply(201, json={"id": "t_1"}))
    run = go(flow, {"message": "the site is down"}).run
    assert run.status == "succeeded"
    assert json.loads(partner.requests[0].body) == {
        "subject": "the site is down",
        "priority": "urgent",
    }


def test_wrong_steps_are_refused_with_their_place(api_connection):
    invoice_mapping()
    cases = [
        (
            [{"name": "a", "kind": "fetsh", "path": "/x"}],
            'steps[0].kind: unknown step kind "fetsh"',
        ),
        ([{"name": "a", "kind": "fetch"}], "steps[0].path: required for a fetch step"),
        (
            [{"name": "a", "kind": "fetch", "path": "/x", "metod": "GET"}],
            'steps[0]: unknown key "metod" (did you mean "method"?)',
        ),
        (
            [VERIFY, {**INVOICE, "path": "/invoices/{emial}"}],
            'steps[1].path: unknown field "emial" (the mapping produces: amount, email)',
        ),
        (
            [INVOICE],
            'steps[0].mapping: rule 1: "steps.verify.data.amount" reads step "verify", '
            "which is not an earlier step",
        ),
        (
            [{"name": "w", "kind": "delay", "for": "ten minutes"}],
            'steps[0].for: "ten minutes" is not a duration',
        ),
        (
            [
                VERIFY,
                {**PAID, "when": [{"path": "steps.verfy.data.status", "op": "eq", "value": 1}]},
            ],
            'steps[1].when[0].path: "steps.verfy.data.status" reads step "verfy"',
        ),
        ([VERIFY, {**VERIFY}], 'steps[1].name: "verify" is used twice'),
    ]
    for steps, expected in cases:
        flow = Flow(
            slug="bad", name="bad", trigger="manual", connection=api_connection, steps=steps
        )
        with pytest.raises(ValidationError) as caught:
            flow.full_clean()
        messages = caught.value.message_dict["steps"]
        assert any(expected in message for message in messages), (expected, messages)


def test_a_worker_killed_between_two_steps_loses_nothing_and_repeats_nothing(
    client, make_endpoint, api_connection, partner
):
    # given a webhook workflow whose second step the partner is slow to answer, a short lease
    api_connection.read_timeout = 8.0
    api_connection.save()
    secret = pysecrets.token_hex(20)
    endpoint = make_endpoint("github", secret, slug="gh-killed-wf")
    workflow_flow(
        api_connection,
        [
            {"name": "contact", "kind": "call", "path": "/contacts"},
            {"name": "invoice", "kind": "call", "path": "/invoices"},
        ],
        slug="killed-wf",
        trigger="webhook",
        endpoint=endpoint,
    )
    partner.script(
        Reply(201, json={"id": "c_1"}),  # the first step: answered at once
        Reply(201, json={"id": "i_1"}, delay=7),  # the second: not answered before the kill
        Reply(201, json={"id": "i_1"}),  # the second step again, after the restart
    )
    # when the cluster is killed once the second step's call reached the partner
    event, env = killed_at_second_call(client, endpoint, secret, "killed-wf-1", partner)
    run = FlowRun.objects.get(event=event)
    assert step_rows(run) == [("contact", "succeeded", 1), ("invoice", "running", 1)]
    # then after a restart the event's retry resumes the run at its second step
    restart_until_processed(env, event.pk)
    run.refresh_from_db()
    assert run.status == "succeeded" and FlowRun.objects.filter(event=event).count() == 1
    assert step_rows(run) == [("contact", "succeeded", 1), ("invoice", "succeeded", 2)]
    paths = [r.path for r in partner.requests]
    assert paths == ["/v1/contacts", "/v1/invoices", "/v1/invoices"]  # the first step: once
    keys = [r.headers["Idempotency-Key"] for r in partner.requests]
    assert (
        keys
        == [f"flow:killed-wf:{endpoint.slug}:killed-wf-1:contact"]
        + [f"flow:killed-wf:{endpoint.slug}:killed-wf-1:invoice"] * 2
    )


def test_the_console_shows_each_step_masks_personal_data_and_retries_from_the_failed_step(
    api_connection, partner, operator_client, integration_admin_client
):
    from django.urls import reverse

    from connectors.admin.columns import when

    invoice_mapping()
    flow = workflow_flow(api_connection, [VERIFY, PAID, INVOICE])
    partner.script(
        Reply(200, json={"id": "pay_1", "status": "succeeded", "amount": 4200, "holder": "Ada L"}),
        Reply(422, json={"message": "the invoicing tool refused it"}),
    )
    with pytest.raises(Exception, match="422"):
        go(flow, {"id": "pay_1", "email": "ada@example.test"})
    run = FlowRun.objects.get()
    assert run.status == "failed" and run.current_step == "invoice"
    page = reverse("admin:flows_flowrun_change", args=[run.pk])
    # an operator sees every step, its calls, and no personal data
    seen = operator_client.get(page).content.decode()
    for text in ("verify", "paid", "invoice", "GET /payments/pay_1 → 200", "POST /invoices → 422"):
        assert text in seen, text
    assert "ada@example.test" not in seen and "Ada L" not in seen
    assert "4200" in seen  # what is not personal stays readable
    assert "Retry from the failed step" in seen
    # an integration admin (who holds the PII permission) sees what was sent and read
    shown = integration_admin_client.get(page).content.decode()
    assert "ada@example.test" in shown and "Ada L" in shown
    # the flow's page draws its steps in order
    diagram = integration_admin_client.get(
        reverse("admin:flows_flow_change", args=[flow.pk])
    ).content.decode()
    assert diagram.index("GET /payments/{trigger.id}") < diagram.index("else stop")
    assert diagram.index("else stop") < diagram.index("POST /invoices · mapping to-invoice")
    # Retry from the failed step: the verified payment is not fetched again
    purge_queue()
    retried = operator_client.post(reverse("admin:flows_flowrun_retry", args=[run.pk]))
    assert retried.status_code == 302
    partner.script(Reply(201, json={"id": "inv_1"}))
    assert workflow.resume_run(run.pk) == "succeeded"
    assert step_rows(run) == [
        ("verify", "succeeded", 1),
        ("paid", "succeeded", 1),
        ("invoice", "succeeded", 2),
    ]
    assert [r.method for r in partner.requests] == ["GET", "POST", "POST"]
    # each call row names its step: the step lists every attempt's calls, the refused one too
    calls = ApiCall.objects.filter(run_ref=run.calls_ref).order_by("pk")
    assert list(calls.values_list("step", "status_code")) == [
        ("verify", 200),
        ("invoice", 422),
        ("invoice", 201),
    ]
    seen = operator_client.get(page).content.decode()
    assert "POST /invoices → 422" in seen and "POST /invoices → 201" in seen
    # a waiting run is listed with the time it resumes, and can be cancelled by hand
    waiting = workflow_flow(
        api_connection, [{"name": "later", "kind": "delay", "for": "2h"}], slug="later"
    )
    paused = go(waiting, {}, ref="t-9").run
    listed = operator_client.get(reverse("admin:flows_flowrun_changelist") + "?status=waiting")
    assert str(when(paused.resume_at)) in listed.content.decode()
    operator_client.post(reverse("admin:flows_flowrun_cancel", args=[paused.pk]))
    paused.refresh_from_db()
    assert paused.status == "cancelled" and paused.cancelled_by.startswith("operator")
    purge_queue()


def test_steps_in_the_file_apply_export_back_and_name_a_wrong_place(api_connection):
    from flows import iac

    invoice_mapping()
    entry = {
        "slug": "pay-invoice",
        "trigger": {"type": "manual"},
        "action": {"connection": api_connection.slug},
        "steps": [VERIFY, PAID, INVOICE],
        "correlation_key": "id",
        "cancel": {"event_type": "payment.refunded"},
    }
    iac.apply_document({"flows": [entry]})
    flow = Flow.objects.get(slug="pay-invoice")
    assert flow.steps == [VERIFY, PAID, INVOICE] and flow.cancel_event_type == "payment.refunded"
    exported = iac.export_document()
    (back,) = [f for f in exported["flows"] if f["slug"] == "pay-invoice"]
    assert back["steps"] == [VERIFY, PAID, INVOICE]
    assert back["cancel"] == {"event_type": "payment.refunded"}
    assert back["action"] == {"connection": api_connection.slug}
    report = iac.apply_document({"flows": exported["flows"]})
    assert report.changes == ["= flow pay-invoice (unchanged)"]
    wrong = {**entry, "steps": [VERIFY, {**INVOICE, "path": "/invoices/{emial}"}]}
    with pytest.raises(iac.InvalidDocument) as caught:
        iac.apply_document({"flows": [entry, {**wrong, "slug": "other"}]})
    assert any(
        e.startswith('flows[1].steps[1].path: unknown field "emial"') for e in caught.value.errors
    ), caught.value.errors


def test_the_gate_and_the_register_see_what_each_step_sends(api_connection):
    from governance.deliverables import processing_register
    from governance.gate import findings

    invoice_mapping()  # its "email" is PII
    api_connection.environment, api_connection.purpose = "production", ""
    api_connection.save()
    workflow_flow(api_connection, [VERIFY, PAID, INVOICE], slug="pay-wf")
    warned = [f.message for f in findings() if f.id == "W009"]
    assert warned == [
        "Flow pay-wf sends personal data (email) to partner, which has no purpose."
    ], warned
    [row] = [line for line in processing_register().splitlines() if line.startswith("| partner")]
    assert "| email |" in row
