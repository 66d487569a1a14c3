"""The writes on the hot path: prepared INSERTs/UPDATEs (connectors.rows), call rows written
together at the end of a flow run (calllog.deferred), a flow run written once when it ends,
and an idempotency claim that costs one statement outside a transaction and a savepoint inside
one. Statement counts are checked, never timings."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from connectors import hub, rows
from connectors.engine import calllog, idempotency
from connectors.models import ApiCall, IdempotencyRecord
from flows.models import Flow, FlowRun, Mapping, MappingRule
from flows.services.runner import run_flow
from tests.partners import Reply
from webhooks.models import WebhookEvent
from webhooks.services.processing import claim, process_event

pytestmark = pytest.mark.django_db(transaction=True)

FLOW_TABLES = ("flows_flowrun", "connectors_apicall", "connectors_idempotencyrecord")
EVENT_TABLES = ("webhooks_webhookevent", "webhooks_eventattempt")


WRITE = re.compile(r'\b(INSERT INTO|UPDATE|DELETE FROM) "(\w+)"')


def writes(queries, tables=FLOW_TABLES) -> list[tuple[str, str]]:
    """(verb, table) of each write to one of ``tables``, in order (a statement with a
    data-modifying ``WITH`` counts each of its writes)."""
    return [
        (verb.split()[0], table)
        for query in queries
        for verb, table in WRITE.findall(query["sql"])
        if table in tables
    ]


@pytest.fixture
def upsert(api_connection):
    mapping = Mapping.objects.create(slug="m", name="m")
    MappingRule.objects.create(mapping=mapping, position=1, source="email", target="email")
    return Flow.objects.create(
        slug="upsert",
        name="upsert",
        trigger="manual",
        connection=api_connection,
        mapping=mapping,
        path="/contacts",
        match_key="email",
        lookup_path="/contacts?email={email}",
        update_path="/contacts/{id}",
    )


def test_an_upsert_that_creates_costs_four_writes(upsert, partner):
    partner.script(Reply(200, json=[]), Reply(201, json={"id": "c_1"}))
    with CaptureQueriesContext(connection) as queries:
        run = run_flow(upsert, {"email": "a@x.test"}, trigger="manual", trigger_ref="r1").run
    assert writes(queries.captured_queries) == [
        ("INSERT", "connectors_idempotencyrecord"),  # the claim, its own autocommit statement
        ("UPDATE", "connectors_idempotencyrecord"),  # the stored answer
        ("INSERT", "connectors_apicall"),  # both call rows, one statement…
        ("INSERT", "flows_flowrun"),  # …and the run, once, when it ended
    ]
    statements = [q["sql"] for q in queries.captured_queries if writes([q])]
    # on PostgreSQL the run and its call rows are one statement (a data-modifying WITH)
    assert len(statements) == (3 if connection.vendor == "postgresql" else 4)
    # no BEGIN/COMMIT around the claim outside a transaction
    sql = [q["sql"] for q in queries.captured_queries]
    claim = next(i for i, q in enumerate(sql) if q.startswith('INSERT INTO "connectors_idem'))
    assert not sql[claim - 1].upper().startswith(("BEGIN", "SAVEPOINT"))
    assert not sql[claim + 1].upper().startswith(("COMMIT", "RELEASE"))
    stored = FlowRun.objects.get()
    assert (stored.pk, stored.status, stored.outcome, stored.record_id) == (
        run.pk,
        "succeeded",
        "created",
        "c_1",
    )
    assert stored.finished_at >= stored.started_at
    calls = list(ApiCall.objects.order_by("pk").values_list("method", "path", "status_code"))
    assert calls == [("GET", "/contacts?email=a%40x.test", 200), ("POST", "/contacts", 201)]
    assert set(ApiCall.objects.values_list("correlation_id", flat=True)) == {run.correlation_id}
    record = IdempotencyRecord.objects.get()
    assert (record.key, record.state, record.response_status) == (
        "flow:upsert:r1",
        "completed",
        201,
    )
    assert bytes(record.response_body) == b'{"id": "c_1"}'


def test_no_run_row_exists_while_the_action_runs(upsert, partner):
    seen = []

    def during_lookup(request):
        # the partner is answering: the run has not been written yet, nor its calls
        seen.append((FlowRun.objects.count(), ApiCall.objects.count()))
        return Reply(200, json={"results": [{"id": "c_9", "email": "a@x.test"}]})

    partner.script(during_lookup)
    result = run_flow(upsert, {"email": "a@x.test"}, trigger="manual", trigger_ref="r2")
    assert seen == [(0, 0)]
    assert result.run.outcome == "unchanged"
    assert FlowRun.objects.get().status == "succeeded" and ApiCall.objects.count() == 1


def test_a_failed_run_still_writes_its_run_and_its_call_rows(upsert, partner):
    partner.script(Reply(200, json=[]), Reply(422, json={"message": "email invalid"}))
    with pytest.raises(hub.PermanentError) as raised:
        run_flow(upsert, {"email": "a@x.test"}, trigger="manual", trigger_ref="r3")
    run = FlowRun.objects.get()
    assert raised.value.flow_run.pk == run.pk and run.status == "failed"
    assert "email invalid" in run.error
    assert list(ApiCall.objects.order_by("pk").values_list("status_code", flat=True)) == [200, 422]


def test_deferred_rows_are_written_at_the_end_even_when_the_block_raises(api_connection, partner):
    partner.script(Reply(200, json={}), Reply(200, json={}), Reply(200, json={}))
    with calllog.deferred():
        hub.call("partner", "GET", "/a")
        with calllog.deferred():  # nested: the outer block writes
            hub.call("partner", "GET", "/b")
        assert ApiCall.objects.count() == 0
    assert list(ApiCall.objects.order_by("pk").values_list("path", flat=True)) == ["/a", "/b"]
    with pytest.raises(RuntimeError, match="boom"), calllog.deferred():
        hub.call("partner", "GET", "/c")
        raise RuntimeError("boom")
    assert ApiCall.objects.filter(path="/c").count() == 1
    # outside a block, each call writes its row at once
    partner.script(Reply(200, json={}))
    hub.call("partner", "GET", "/d")
    assert ApiCall.objects.filter(path="/d").count() == 1


def test_prepared_inserts_match_what_the_orm_writes(upsert):
    started = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    many = [
        FlowRun(flow=upsert, trigger="manual", trigger_ref=f"t{i}", correlation_id=f"c{i}")
        for i in range(rows.CHUNK + 5)  # more than one statement's worth
    ]
    many[0].started_at = started
    with CaptureQueriesContext(connection) as queries:
        rows.insert(many, set_pks=True)
    inserts = [q for q in queries.captured_queries if q["sql"].startswith("INSERT")]
    if connection.features.can_return_columns_from_insert:
        assert len(inserts) == 2
    pks = [run.pk for run in many]
    assert None not in pks and len(set(pks)) == len(pks)
    stored = {run.pk: run for run in FlowRun.objects.all()}
    assert [stored[pk].trigger_ref for pk in pks] == [f"t{i}" for i in range(rows.CHUNK + 5)]
    assert stored[pks[0]].started_at == started  # aware datetimes kept exactly
    assert stored[pks[1]].status == "running" and stored[pks[1]].started_at is not None  # defaults


def test_prepared_update_stores_json_and_bytes_like_the_orm(db):
    record = IdempotencyRecord.objects.create(
        scope="s",
        key="k",
        fingerprint="f",
        expires_at=datetime.now(UTC) + timedelta(days=1),
    )
    changed = rows.update(
        IdempotencyRecord,
        {"id": record.pk},
        state="completed",
        response_status=201,
        response_headers={"Location": "/c/1", "ETag": '"é"'},
        response_body=b"\x00\xff{}",
    )
    assert changed == 1
    record.refresh_from_db()
    assert record.response_headers == {"Location": "/c/1", "ETag": '"é"'}
    assert bytes(record.response_body) == b"\x00\xff{}"
    assert rows.update(IdempotencyRecord, {"id": record.pk + 1000}, state="failed") == 0


def test_losing_the_claim_inside_a_transaction_leaves_it_usable(db):
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


def test_processing_an_event_costs_three_writes_and_claims_once(make_endpoint):
    endpoint = make_endpoint("github", "s3cret", slug="shop")
    event = stored_event(endpoint, "e-1", {"id": 1})
    with CaptureQueriesContext(connection) as queries:
        assert process_event(event.pk) == "processed"
    assert writes(queries.captured_queries, EVENT_TABLES) == [
        ("UPDATE", "webhooks_webhookevent"),  # the claim, which also hands back the row
        ("INSERT", "webhooks_eventattempt"),
        ("UPDATE", "webhooks_webhookevent"),  # processed, only by the lease's holder
    ]
    event.refresh_from_db()
    assert (event.status, event.attempts, event.lease_until) == ("processed", 1, None)
    assert list(event.attempt_log.values_list("number", "outcome")) == [(1, "processed")]
    # a processed event cannot be claimed again: nothing changes
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
    with CaptureQueriesContext(connection) as queries:
        process_event(stored_event(endpoint, "e-4", {"id": 4, "amount": 5}).pk)
    assert not any('"flows_flow"' in q["sql"] for q in queries.captured_queries)  # cached
    assert FlowRun.objects.count() == 2
    flow.enabled = False
    flow.save()
    process_event(stored_event(endpoint, "e-5", {"id": 5, "amount": 5}).pk)
    assert FlowRun.objects.count() == 2  # the disabled flow no longer runs
    flow.enabled = True
    flow.event_type = "refund.*"
    flow.save()
    process_event(stored_event(endpoint, "e-6", {"id": 6, "amount": 5}).pk)
    assert FlowRun.objects.count() == 2  # nor when its type pattern no longer matches


def test_without_returning_a_claim_is_an_update_then_a_read(make_endpoint, monkeypatch):
    """Databases without RETURNING (SQLite before 3.35): the claim by UPDATE, then SELECT."""
    endpoint = make_endpoint("github", "s3cret", slug="shop")
    event = stored_event(endpoint, "e-7", {"id": 7})
    monkeypatch.setattr(connection.features, "can_return_columns_from_insert", False)
    claimed = claim(event.pk)
    assert (claimed.pk, claimed.status, claimed.attempts) == (event.pk, "processing", 1)
    assert claim(event.pk) is None  # held: nobody else wins it


def test_without_returning_keys_come_from_the_cursor(upsert, monkeypatch):
    """SQLite before 3.35: one row per INSERT and the cursor's last id (PostgreSQL always has
    RETURNING, and its driver has no last row id)."""
    if connection.vendor != "sqlite":
        pytest.skip("only SQLite can lack RETURNING")
    monkeypatch.setattr(connection.features, "can_return_columns_from_insert", False)
    runs = [FlowRun(flow=upsert, trigger="manual", correlation_id=f"c{i}") for i in range(3)]
    rows.insert(runs, set_pks=True)
    assert [r.pk for r in runs] == list(FlowRun.objects.order_by("pk").values_list("pk", flat=True))


def test_a_delivery_is_one_insert_then_its_queue_row_on_commit(make_endpoint, client):
    from tests import signing
    from webhooks.services.queue import pusher, queue_is_in_the_database

    secret = "s3cret-ingest-writes"
    endpoint = make_endpoint("github", secret, slug="gh-writes")
    body = signing.fixture("github", "push")
    headers = signing.github_headers(body, secret, "w-1")
    with CaptureQueriesContext(connection) as queries:  # autocommit, as in production
        response = client.post(
            f"/webhooks/{endpoint.slug}/",
            data=body,
            content_type="application/json",
            headers=headers,
        )
    assert response.status_code == 202
    statements = [q["sql"] for q in queries.captured_queries]
    writes = [w for w in statements if w.split()[0].upper() in {"INSERT", "UPDATE", "DELETE"}]
    assert "webhooks_webhookevent" in writes[0]
    assert not [s for s in statements if s.split()[0].upper() in {"BEGIN", "SAVEPOINT"}]
    if queue_is_in_the_database():
        # the event's INSERT, then, once it is committed, django-q2's queue row: two short
        # autocommit writes, no transaction around them
        assert len(writes) == 2 and "django_q_ormq" in writes[1]
    else:
        assert len(writes) == 1  # the task goes to Redis from the pusher thread
        assert pusher.flush(timeout=10)
    assert WebhookEvent.objects.filter(endpoint=endpoint, event_id="w-1").count() == 1
