"""One test per step kind (flows/steps/), each over real HTTP against the scripted partner:
what the kind sends, what it gives the next steps, and what each of its options changes. How
the kinds combine (exactly once, resumption, cancellation, a killed worker) is
tests/test_workflows.py; ``condition`` and ``python`` have their tests there too."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from connectors.engine.errors import PermanentError
from flows.models import FlowRun, FlowRunStep, Mapping, MappingRule
from tests.partners import Reply
from tests.test_workflows import go, step_rows, workflow_flow

pytestmark = pytest.mark.django_db(transaction=True)


def mapping(slug: str, *rules: tuple[str, str]) -> Mapping:
    made = Mapping.objects.create(slug=slug, name=slug)
    for position, (source, target) in enumerate(rules, start=1):
        MappingRule.objects.create(mapping=made, position=position, source=source, target=target)
    return made


def result(run, name: str) -> dict:
    return FlowRunStep.objects.get(run=run, name=name).result


def test_fetch_reads_by_get_or_search_post_and_decides_what_a_404_means(api_connection, partner):
    mapping("search", ("email", "email"))
    flow = workflow_flow(
        api_connection,
        [
            # a search: the mapping is the body, and "results" picks the part later steps read
            {
                "name": "find",
                "kind": "fetch",
                "method": "POST",
                "path": "/contacts/search",
                "mapping": "search",
                "results": "results.0",
            },
            # a read that may find nothing: the run goes on with no data
            {
                "name": "order",
                "kind": "fetch",
                "path": "/orders/{trigger.order}",
                "not_found": "go_on",
            },
            {
                "name": "note",
                "kind": "call",
                "path": "/notes/{steps.find.data.id}",
                "method": "PUT",
            },
        ],
    )
    partner.script(
        Reply(200, json={"results": [{"id": "c_7", "email": "ada@example.test"}], "total": 1}),
        Reply(404, json={"error": "no such order"}),
        Reply(200, json={"id": "n_1"}),
    )
    run = go(flow, {"email": "ada@example.test", "order": "o/1", "card": "4242"}).run
    assert run.status == "succeeded"
    find, order, note = partner.requests
    assert (find.method, find.path) == ("POST", "/v1/contacts/search")
    assert json.loads(find.body) == {"email": "ada@example.test"}  # the mapped fields only
    assert "Idempotency-Key" not in find.headers  # a read, even by POST
    assert (order.method, order.path, order.body) == ("GET", "/v1/orders/o%2F1", b"")
    assert (note.method, note.path) == ("PUT", "/v1/notes/c_7")
    assert result(run, "find") == {
        "status": 200,
        "data": {"id": "c_7", "email": "ada@example.test"},
    }
    assert result(run, "order") == {"status": 404, "data": None}
    # "stop" ends the run there, as skipped; the default ("fail") fails it
    flow.steps = [{**flow.steps[1], "not_found": "stop"}, {**flow.steps[2], "path": "/notes"}]
    flow.full_clean()
    flow.save()
    partner.script(Reply(404))
    stopped = go(flow, {"order": "o2"}, ref="t-2").run
    assert (stopped.status, stopped.error) == ("skipped", "/orders/{trigger.order} was not found")
    assert step_rows(stopped) == [("order", "succeeded", 1), ("note", "skipped", 0)]
    flow.steps = [{"name": "order", "kind": "fetch", "path": "/orders/{trigger.order}"}]
    flow.full_clean()
    flow.save()
    partner.script(Reply(404))
    with pytest.raises(PermanentError):
        go(flow, {"order": "o3"}, ref="t-3")
    assert FlowRun.objects.get(trigger_ref="t-3").status == "failed"
    assert len(partner.requests) == 5


def test_upsert_creates_once_leaves_an_equal_record_and_updates_a_different_one(
    api_connection, partner
):
    mapping("contact", ("email", "email"), ("name", "name"))
    customer = {
        "name": "customer",
        "kind": "upsert",
        "mapping": "contact",
        "match_key": "email",
        "lookup_path": "/contacts?email={email}",
        "path": "/contacts",
        "update_path": "/contacts/{id}",
    }
    tag = {"name": "tag", "kind": "call", "path": "/contacts/{steps.customer.record_id}/tags"}
    flow = workflow_flow(api_connection, [customer, tag])
    ada = {"email": "ada@example.test", "name": "Ada"}
    # not found: created, with the step's own idempotency key; the next step reads its id
    partner.script(
        Reply(200, json={"results": []}), Reply(201, json={"id": "c_1"}), Reply(201, json={})
    )
    run = go(flow, ada, ref="t-1").run
    assert run.status == "succeeded"
    assert result(run, "customer") == {"outcome": "created", "record_id": "c_1", "data": ada}
    lookup, create, tagged = partner.requests
    assert (lookup.method, lookup.path) == ("GET", "/v1/contacts?email=ada%40example.test")
    assert (create.method, create.path, json.loads(create.body)) == ("POST", "/v1/contacts", ada)
    assert create.headers["Idempotency-Key"] == "flow:wf:t-1:customer"
    assert tagged.path == "/v1/contacts/c_1/tags"
    # found and equal on every mapped field (the search is fuzzy: only the key's match counts)
    found = {"results": [{"id": "c_0", "email": "ad@example.test"}, {"id": "c_1", **ada}]}
    partner.script(Reply(200, json=found), Reply(201, json={}))
    run = go(flow, ada, ref="t-2").run
    assert result(run, "customer")["outcome"] == "unchanged"
    assert [r.method for r in partner.requests[3:]] == ["GET", "POST"]  # the lookup, the tag
    # found and different: updated where update_path says
    partner.script(Reply(200, json=found), Reply(200, json={"id": "c_1"}), Reply(201, json={}))
    run = go(flow, {**ada, "name": "Ada L."}, ref="t-3").run
    assert result(run, "customer")["outcome"] == "updated"
    update = partner.requests[6]
    assert (update.method, update.path) == ("PATCH", "/v1/contacts/c_1")
    assert json.loads(update.body) == {"email": "ada@example.test", "name": "Ada L."}
    assert partner.requests[7].path == "/v1/contacts/c_1/tags"


def test_call_sends_any_method_with_a_key_for_writes_and_gives_its_answer_on(
    api_connection, partner
):
    mapping("priority", ("trigger.level", "priority"))
    flow = workflow_flow(
        api_connection,
        [
            {"name": "ticket", "kind": "call", "path": "/tickets", "record_id_field": "ticket.ref"},
            {
                "name": "prioritise",
                "kind": "call",
                "method": "PATCH",
                "path": "/tickets/{steps.ticket.record_id}",
                "mapping": "priority",
            },
            {
                "name": "queue",
                "kind": "call",
                "method": "GET",
                "path": "/queues/{steps.prioritise.data.queue}",
            },
            {
                "name": "close",
                "kind": "call",
                "method": "DELETE",
                "path": "/drafts/{trigger.draft}",
            },
        ],
    )
    partner.script(
        Reply(201, json={"ticket": {"ref": "T-9"}}),
        Reply(200, json={"queue": "on-call"}),
        Reply(200, json={"members": 3}),
        Reply(204),
    )
    run = go(flow, {"level": "urgent", "draft": "d1", "email": "not@sent.test"}).run
    assert run.status == "succeeded"
    assert (run.outcome, run.record_id) == ("called", "")  # the last call's: a 204 has no id
    ticket, prioritise, queue, close = partner.requests
    # no mapping: an empty body; with one: the mapped fields only
    assert (ticket.method, ticket.path, ticket.body) == ("POST", "/v1/tickets", b"")
    assert (prioritise.method, json.loads(prioritise.body)) == ("PATCH", {"priority": "urgent"})
    assert prioritise.path == "/v1/tickets/T-9"
    assert (queue.method, queue.path) == ("GET", "/v1/queues/on-call")
    assert (close.method, close.path) == ("DELETE", "/v1/drafts/d1")
    # every write carries its step's key; a read carries none
    keys = {r.method: r.headers.get("Idempotency-Key") for r in partner.requests}
    assert keys == {
        "POST": "flow:wf:t-1:ticket",
        "PATCH": "flow:wf:t-1:prioritise",
        "GET": None,
        "DELETE": "flow:wf:t-1:close",
    }
    assert result(run, "ticket") == {
        "status": 201,
        "data": {"ticket": {"ref": "T-9"}},
        "record_id": "T-9",
    }
    assert result(run, "close") == {"status": 204, "data": None, "record_id": ""}


def test_delay_for_a_duration_and_a_time_already_passed(api_connection, partner):
    later = workflow_flow(
        api_connection,
        [
            {"name": "wait", "kind": "delay", "for": "1h30m"},
            {"name": "remind", "kind": "call", "path": "/reminders"},
        ],
    )
    run = go(later, {}).run
    wait = FlowRunStep.objects.get(run=run, name="wait")
    assert run.status == "waiting"
    assert run.resume_at == wait.resume_at == wait.started_at + timedelta(hours=1, minutes=30)
    assert wait.result == {"until": run.resume_at.isoformat()}
    # a slot that has started: "if_past": "stop" sends no reminder; the default goes on at once
    started = (timezone.now() - timedelta(minutes=5)).replace(microsecond=0)
    steps = [
        {"name": "before", "kind": "delay", "until": "{slot} - 24h", "if_past": "stop"},
        {"name": "remind", "kind": "call", "path": "/reminders"},
    ]
    stop = workflow_flow(api_connection, steps, slug="stop")
    run = go(stop, {"slot": started.isoformat()}, ref="t-2").run
    assert (run.status, run.error) == ("skipped", "delay before: its time had passed")
    assert step_rows(run) == [("before", "succeeded", 1), ("remind", "skipped", 0)]
    assert partner.requests == []
    go_on = workflow_flow(api_connection, [{**steps[0], "if_past": "go_on"}, steps[1]], slug="on")
    partner.script(Reply(201, json={"id": "r_1"}))
    run = go(go_on, {"slot": started.isoformat()}, ref="t-3").run
    assert run.status == "succeeded"
    assert result(run, "before") == {
        "until": (started - timedelta(hours=24)).isoformat(),
        "past": True,
    }
    assert [r.path for r in partner.requests] == ["/v1/reminders"]
