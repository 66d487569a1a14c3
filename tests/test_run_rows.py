"""The record is the truth: a flow run's row exists from its start, each API call's row is
committed when its attempt ends (before the next call is sent), a run whose worker died is
marked interrupted with what it had done, and its retry takes over what the dead run held
(the upsert lock, the in-flight idempotency key) as soon as the run's lease is gone.

The last test does it with a real ``qcluster`` killed with SIGKILL between two calls."""

from __future__ import annotations

import json
import os
import secrets as pysecrets
import signal
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection as db_connection
from django.db import transaction

from connectors import hub
from connectors.engine import idempotency
from connectors.models import ApiCall, IdempotencyRecord
from flows.models import Flow, FlowRun, Mapping, MappingRule
from flows.services.runner import mark_interrupted, run_flow
from tests import signing
from tests.partners import Reply
from tests.processes import (
    hub_process_env,
    purge_queue,
    restart_until_processed,
    start,
    stop,
    wait_for,
)
from webhooks.models import WebhookEvent
from webhooks.services import processing
from webhooks.services.processing import claim, process_event

pytestmark = pytest.mark.django_db(transaction=True)


def upsert_flow(connection, *, slug="upsert", **fields) -> Flow:
    mapping = Mapping.objects.create(slug=f"{slug}-m", name="m")
    MappingRule.objects.create(mapping=mapping, position=1, source="email", target="email")
    return Flow.objects.create(
        slug=slug,
        name=slug,
        trigger=fields.pop("trigger", "manual"),
        connection=connection,
        mapping=mapping,
        path="/contacts",
        match_key="email",
        lookup_path="/contacts?email={email}",
        update_path="/contacts/{id}",
        **fields,
    )


@pytest.fixture
def upsert(api_connection):
    return upsert_flow(api_connection)


def test_an_upsert_that_creates_stores_its_run_calls_and_key(upsert, partner):
    partner.script(Reply(200, json=[]), Reply(201, json={"id": "c_1"}))
    run = run_flow(upsert, {"email": "a@x.test"}, trigger="manual", trigger_ref="r1").run
    stored = FlowRun.objects.get()
    assert (stored.pk, stored.status, stored.outcome, stored.record_id) == (
        run.pk,
        "succeeded",
        "created",
        "c_1",
    )
    assert stored.finished_at >= stored.started_at and stored.lease_until is None
    calls = list(
        ApiCall.objects.order_by("pk").values_list("method", "path", "status_code", "run_ref")
    )
    assert calls == [
        ("GET", "/contacts?email=a%40x.test", 200, f"flow_run:{run.pk}"),
        ("POST", "/contacts", 201, f"flow_run:{run.pk}"),
    ]
    assert set(ApiCall.objects.values_list("correlation_id", flat=True)) == {run.correlation_id}
    record = IdempotencyRecord.objects.get()
    assert (record.key, record.state, record.response_status) == (
        "flow:upsert:r1",
        "completed",
        201,
    )
    assert bytes(record.response_body) == b'{"id": "c_1"}'


def test_the_run_is_running_and_each_call_is_stored_before_the_next_is_sent(upsert, partner):
    seen = []

    def at_create(request):
        # the partner is answering the second call: what does the console show right now?
        run = FlowRun.objects.get()
        calls = list(ApiCall.objects.values_list("method", "status_code", "run_ref"))
        seen.append((run.status, run.lease_until is not None, calls, run.pk))
        return Reply(201, json={"id": "c_2"})

    partner.script(Reply(200, json=[]), at_create)
    run_flow(upsert, {"email": "b@x.test"}, trigger="manual", trigger_ref="r2")
    ((status, leased, calls, pk),) = seen
    assert (status, leased) == ("running", True)
    assert calls == [("GET", 200, f"flow_run:{pk}")]
    assert FlowRun.objects.get().status == "succeeded" and ApiCall.objects.count() == 2


def test_a_lone_call_is_stored_before_the_caller_sees_its_result(api_connection, partner):
    partner.script(Reply(201, json={"id": 1}))
    response = hub.call("partner", "POST", "/things", json={"a": 1})
    assert response.status == 201
    call = ApiCall.objects.get()
    assert (call.method, call.status_code, call.run_ref) == ("POST", 201, "")


def test_a_failed_run_still_has_its_run_and_its_call_rows(upsert, partner):
    partner.script(Reply(200, json=[]), Reply(422, json={"message": "email invalid"}))
    with pytest.raises(hub.PermanentError) as raised:
        run_flow(upsert, {"email": "a@x.test"}, trigger="manual", trigger_ref="r3")
    run = FlowRun.objects.get()
    assert raised.value.flow_run.pk == run.pk and run.status == "failed"
    assert "email invalid" in run.error
    assert list(ApiCall.objects.order_by("pk").values_list("status_code", flat=True)) == [200, 422]


def lost_run(flow, *, seconds_ago=5, **fields) -> FlowRun:
    now = datetime.now(UTC)
    return FlowRun.objects.create(
        flow=flow,
        trigger="manual",
        status="running",
        correlation_id=f"c-{pysecrets.token_hex(4)}",
        started_at=now - timedelta(seconds=seconds_ago + 60),
        lease_until=now - timedelta(seconds=seconds_ago),
        **fields,
    )


def test_the_sweeper_marks_a_lost_run_interrupted_with_what_it_had_done(upsert, api_connection):
    lost = lost_run(upsert)
    ApiCall.objects.create(
        connection=api_connection,
        method="GET",
        path="/contacts?email=a%40x.test",
        status_code=200,
        correlation_id=lost.correlation_id,
        run_ref=lost.calls_ref,
    )
    live = lost_run(upsert, seconds_ago=-60)  # its lease runs for another minute
    result = processing.sweep()
    assert result["interrupted_flow_runs"] == 1
    lost.refresh_from_db()
    live.refresh_from_db()
    assert lost.status == "interrupted" and lost.finished_at is not None
    assert lost.error == (
        "worker lost (lease expired) before the run ended; 1 call(s) made: GET → 200"
    )
    assert "a%40x.test" not in lost.error  # methods and statuses only: no data
    assert live.status == "running"
    assert mark_interrupted() == 0  # nothing twice


def test_the_console_lists_running_and_interrupted_runs_with_their_calls(
    upsert, api_connection, operator_client
):
    running = lost_run(upsert, seconds_ago=-60)
    interrupted = lost_run(upsert)
    for run, path in ((running, "/contacts?email=r"), (interrupted, "/contacts?email=i")):
        ApiCall.objects.create(
            connection=api_connection,
            method="GET",
            path=path,
            status_code=200,
            correlation_id=run.correlation_id,
            run_ref=run.calls_ref,
        )
    processing.sweep()
    page = operator_client.get("/admin/flows/flowrun/").content.decode()
    assert "Running" in page and "Interrupted (its worker was lost" in page
    page = operator_client.get(
        "/admin/flows/flowrun/", {"status__exact": "interrupted"}
    ).content.decode()
    assert f"/admin/flows/flowrun/{interrupted.pk}/change/" in page
    assert f"/admin/flows/flowrun/{running.pk}/change/" not in page
    detail = operator_client.get(f"/admin/flows/flowrun/{interrupted.pk}/change/")
    assert f"?run_ref=flow_run:{interrupted.pk}" in detail.content.decode()
    calls = operator_client.get("/admin/connectors/apicall/", {"run_ref": interrupted.calls_ref})
    assert calls.status_code == 200
    assert "/contacts?email=i" in calls.content.decode()
    assert "/contacts?email=r" not in calls.content.decode()


def test_a_retry_takes_over_the_lock_and_key_of_a_run_whose_lease_is_gone(upsert, partner):
    from django.core.cache import cache

    from flows.services.runner import Action, _UpsertLock

    # given a run that died while creating: it holds the upsert lock and the in-flight key
    dead = lost_run(upsert)
    lock = _UpsertLock(Action.of(upsert), "a@x.test", dead)
    assert cache.add(lock.key, dead.pk, 300)
    with idempotency.held_until(dead.lease_until):
        idempotency.begin(
            f"connection:{upsert.connection_id}",
            "flow:upsert:r4",
            # the same request as the retry's create (the engine's compact JSON body)
            idempotency.request_fingerprint("POST", "/contacts", None, b'{"email":"a@x.test"}'),
            lease_seconds=300,
            correlation_id="c",
        )
    # when its retry runs
    partner.script(Reply(200, json=[]), Reply(201, json={"id": "c_4"}))
    result = run_flow(upsert, {"email": "a@x.test"}, trigger="manual", trigger_ref="r4")
    # then it was not held up by the dead run's lock nor by its key
    assert result.run.status == "succeeded" and result.run.outcome == "created"
    assert cache.get(lock.key) is None  # released by its new holder


def test_a_live_holder_keeps_its_lock(upsert, partner):
    from django.core.cache import cache

    from flows.services.runner import Action, _UpsertLock

    live = lost_run(upsert, seconds_ago=-60)
    lock = _UpsertLock(Action.of(upsert), "a@x.test", live)
    assert cache.add(lock.key, live.pk, 300)
    with pytest.raises(hub.RetryableError, match="another run is upserting"):
        run_flow(upsert, {"email": "a@x.test"}, trigger="manual", trigger_ref="r5")
    assert partner.requests == []
    assert cache.get(lock.key) == live.pk


def test_losing_the_idempotency_claim_inside_a_transaction_leaves_it_usable(db):
    lease = {"lease_seconds": 60, "correlation_id": "c"}
    with transaction.atomic():
        first, replay = idempotency.begin("scope", "key", "fp", **lease)
        assert replay is None
        # the same key again inside the same transaction: the INSERT fails in a savepoint
        with pytest.raises(hub.IdempotencyConflictError):
            idempotency.begin("scope", "key", "fp", **lease)
        # the transaction was not broken by the failed INSERT
        assert IdempotencyRecord.objects.filter(pk=first.pk).exists()
    assert IdempotencyRecord.objects.count() == 1


def stored_event(endpoint, event_id: str, payload: dict) -> WebhookEvent:
    return WebhookEvent.objects.create(
        endpoint=endpoint,
        event_id=event_id,
        event_type="order.paid",
        body=json.dumps(payload).encode(),
        headers={},
        correlation_id=f"corr-{event_id}",
    )


def test_processing_claims_once_and_records_the_attempt(make_endpoint):
    endpoint = make_endpoint("github", "s3cret", slug="shop")
    event = stored_event(endpoint, "e-1", {"id": 1})
    # nothing is registered for it: the attempt ran to its end, and the event says so
    assert process_event(event.pk) == "unhandled"
    event.refresh_from_db()
    assert (event.status, event.attempts, event.lease_until) == ("unhandled", 1, None)
    assert list(event.attempt_log.values_list("number", "outcome")) == [(1, "unhandled")]
    # a finished event cannot be claimed again: nothing changes
    assert process_event(event.pk) == "skipped"
    event.refresh_from_db()
    assert event.attempts == 1 and event.attempt_log.count() == 1


def test_an_event_not_due_yet_is_not_claimed(make_endpoint):
    endpoint = make_endpoint("github", "s3cret", slug="shop")
    event = stored_event(endpoint, "e-2", {"id": 2})
    WebhookEvent.objects.filter(pk=event.pk).update(
        status="retrying", next_attempt_at=datetime.now(UTC) + timedelta(minutes=5)
    )
    assert claim(event.pk) is None
    event.refresh_from_db()
    assert (event.status, event.attempts) == ("retrying", 0)
    WebhookEvent.objects.filter(pk=event.pk).update(next_attempt_at=None)
    claimed = claim(event.pk)
    assert (claimed.status, claimed.attempts) == ("processing", 1)
    assert claim(event.pk) is None  # held: nobody else wins it


def test_two_sweepers_queue_a_due_event_once(make_endpoint):
    from webhooks.services.queue import shared_broker

    endpoint = make_endpoint("github", "s3cret", slug="shop")
    event = stored_event(endpoint, "e-3", {"id": 3})
    WebhookEvent.objects.filter(pk=event.pk).update(enqueued_at=None)
    broker = shared_broker()
    broker.purge_queue()
    assert processing.sweep()["enqueued"] == 1
    assert processing.sweep()["enqueued"] == 0  # it now has its task
    assert broker.queue_size() == 1


def test_an_endpoints_flows_are_cached_until_one_is_saved(make_endpoint, api_connection):
    """The flows of an endpoint are cached per process; saving a flow (console, integrations
    as code) is seen by the next event."""
    endpoint = make_endpoint("github", "s3cret", slug="shop")
    mapping = Mapping.objects.create(slug="m", name="m")
    MappingRule.objects.create(mapping=mapping, position=1, source="id", target="id")
    flow = Flow.objects.create(
        slug="big-orders",
        name="big orders",
        trigger="webhook",
        endpoint=endpoint,
        event_type="order.*",
        connection=api_connection,
        mapping=mapping,
        path="/orders",
        condition=[{"path": "amount", "op": "gte", "value": 1000}],  # never met below
    )
    process_event(stored_event(endpoint, "e-3", {"id": 3, "amount": 5}).pk)
    assert list(FlowRun.objects.values_list("flow__slug", "status")) == [("big-orders", "skipped")]
    flow.enabled = False
    flow.save()
    process_event(stored_event(endpoint, "e-5", {"id": 5, "amount": 5}).pk)
    assert FlowRun.objects.count() == 1  # the disabled flow no longer runs
    flow.enabled = True
    flow.event_type = "refund.*"
    flow.save()
    process_event(stored_event(endpoint, "e-6", {"id": 6, "amount": 5}).pk)
    assert FlowRun.objects.count() == 1  # nor when its type pattern no longer matches


def killed_at_second_call(client, endpoint, secret: str, delivery: str, partner):
    """Deliver a signed event to a one-worker cluster (short lease) and SIGKILL the cluster once
    the second partner call of its processing has reached the partner; returns the event and
    the cluster's environment (for the restart)."""
    purge_queue()
    env = hub_process_env(Q_WORKERS="1", HUB_WEBHOOK_LEASE_SECONDS="3")
    cluster = start(["qcluster"], env)
    try:
        body = json.dumps({"email": "ada@example.test"}).encode()
        response = client.post(
            f"/webhooks/{endpoint.slug}/",
            data=body,
            content_type="application/json",
            headers=signing.github_headers(body, secret, delivery),
        )
        assert response.status_code == 202
        event = WebhookEvent.objects.get(pk=response.json()["event"])
        db_connection.close()
        wait_for(lambda: len(partner.requests) >= 2, 60, "the second call to reach the partner")
        os.killpg(cluster.pid, signal.SIGKILL)
        cluster.wait(timeout=30)
    finally:
        stop(cluster)
    return event, env


def test_a_worker_killed_between_two_calls_leaves_both_the_run_and_the_call(
    client, make_endpoint, api_connection, partner, tmp_path
):
    # given a webhook flow whose create the partner is slow to answer, and a short lease
    api_connection.read_timeout = 30.0
    api_connection.save()
    secret = pysecrets.token_hex(20)
    endpoint = make_endpoint("github", secret, slug="gh-killed-run")
    upsert_flow(api_connection, slug="killed", trigger="webhook", endpoint=endpoint)
    partner.script(
        Reply(200, json=[]),  # the lookup: answered at once
        Reply(201, json={"id": "c_k"}, delay=25),  # the create: never answered in time
        Reply(200, json=[]),  # the retry's lookup
        Reply(201, json={"id": "c_k"}),  # the retry's create
    )
    # when the cluster is killed once the partner answered the first call and got the second
    event, env = killed_at_second_call(client, endpoint, secret, "killed-run-1", partner)
    # then the console shows the run, running, and the call that was answered, linked to both
    run = FlowRun.objects.get(event=event)
    assert run.status == "running"
    calls = list(ApiCall.objects.values_list("method", "status_code", "run_ref", "correlation_id"))
    assert calls == [("GET", 200, run.calls_ref, event.correlation_id)]
    # and after a restart the run is marked interrupted and the event's retry finishes the work
    # (the run's lease began just after its event's: the retry, queued when the event's lease
    # ran out, may finish before the sweeper's next pass finds the run's lease gone too)
    restart_until_processed(
        env,
        event.pk,
        also=lambda: FlowRun.objects.filter(event=event, status="interrupted").exists(),
        what="the sweeper to mark the killed run interrupted",
    )
    runs = list(FlowRun.objects.filter(event=event).order_by("pk"))
    assert [r.status for r in runs] == ["interrupted", "succeeded"]
    assert runs[0].error.endswith("1 call(s) made: GET → 200")
    posts = [r for r in partner.requests if r.method == "POST"]
    assert len(posts) == 2  # the killed create and the retry's, with one key
    assert posts[0].headers["Idempotency-Key"] == posts[1].headers["Idempotency-Key"]
    outcomes = list(
        WebhookEvent.objects.get(pk=event.pk).attempt_log.values_list("outcome", flat=True)
    )
    # the killed worker's slot of the connection (its bulkhead) is free once the longest
    # attempt could have ended (30 s read timeout here): until then the retry waits, and says so
    assert [o for o in outcomes if o != "waiting"] == ["lost", "processed"]
    assert WebhookEvent.objects.get(pk=event.pk).attempts == 2
