"""Running flows against the sandbox CRM over real HTTP: upsert (create, update, unchanged),
plain calls, conditions, a lookup answering 404, the idempotency key when a first attempt died
after the partner answered, and the flow run's record."""

from __future__ import annotations

import pytest
from django.utils import timezone

from connectors.engine import idempotency
from connectors.models import ApiCall, IdempotencyRecord
from flows.mapping import MappingError
from flows.models import Flow, FlowRun, Mapping, MappingRule
from flows.services.runner import run_flow
from sandbox.models import SandboxContact, SandboxRequest, SandboxState

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def crm(sandbox_crm):
    mapping = Mapping.objects.create(slug="m", name="m")
    MappingRule.objects.create(mapping=mapping, position=1, source="email", target="email")
    MappingRule.objects.create(mapping=mapping, position=2, source="plan", target="plan")
    return sandbox_crm, mapping


def upsert_flow(crm, **fields) -> Flow:
    connection, mapping = crm
    values = {
        "slug": "upsert",
        "name": "upsert",
        "trigger": "manual",
        "connection": connection,
        "mapping": mapping,
        "path": "/contacts",
        "match_key": "email",
        "lookup_path": "/contacts?email={email}",
        "update_path": "/contacts/{id}",
        **fields,
    }
    return Flow.objects.create(**values)


def go(flow, payload, ref="t-1"):
    return run_flow(flow, payload, trigger="manual", trigger_ref=ref)


def test_upsert_creates_then_updates_then_leaves_alone(crm):
    flow = upsert_flow(crm)
    created = go(flow, {"email": "a@x.test", "plan": "pro"}, "r1").run
    updated = go(flow, {"email": "a@x.test", "plan": "team"}, "r2").run
    same = go(flow, {"email": "a@x.test", "plan": "team"}, "r3").run
    assert [created.outcome, updated.outcome, same.outcome] == ["created", "updated", "unchanged"]
    contact = SandboxContact.objects.get()
    assert contact.data == {"email": "a@x.test", "plan": "team"}
    assert created.record_id == updated.record_id == same.record_id == f"c_{contact.pk}"
    writes = SandboxRequest.objects.exclude(method="GET").values_list("method", "idempotency_key")
    assert list(writes) == [
        ("POST", "flow:upsert:r1"),
        ("PATCH", writes[1][1]),
    ]
    assert writes[1][1].startswith(f"flow:upsert:r2:update:c_{contact.pk}:")
    # every run links to its API calls by its correlation id
    assert ApiCall.objects.filter(correlation_id=same.correlation_id).count() == 1


def test_a_plain_call_and_a_condition_that_does_not_hold(crm):
    flow = upsert_flow(crm, match_key="", lookup_path="", update_path="")
    flow.condition = [{"path": "plan", "op": "eq", "value": "pro"}]
    flow.save()
    skipped = go(flow, {"email": "b@x.test", "plan": "free"}, "s1").run
    assert skipped.status == "skipped" and "plan eq 'pro' does not hold" in skipped.error
    called = go(flow, {"email": "b@x.test", "plan": "pro"}, "s2").run
    assert (called.status, called.outcome) == ("succeeded", "called")
    assert SandboxContact.objects.count() == 1


def test_a_lookup_answering_404_means_not_found(crm):
    flow = upsert_flow(crm, lookup_path="/contacts/by-email-{email}", lookup_results="")
    result = go(flow, {"email": "c@x.test"})
    assert result.run.outcome == "created"


def test_a_mapping_error_is_recorded_and_raised(crm):
    flow = upsert_flow(crm)
    rule = Mapping.objects.get().rules.get(target="email")
    rule.required = True
    rule.save()  # a saved rule drops every process's cached copy of the mapping
    with pytest.raises(MappingError, match="rule 1 \\(email → email\\)"):
        go(flow, {"plan": "pro"})
    run = FlowRun.objects.get()
    assert run.status == "failed" and "required field" in run.error
    assert SandboxRequest.objects.count() == 0


class WorkerDied(BaseException):
    """Stands for the process dying (SIGKILL) right after the partner answered."""


def test_a_create_whose_first_attempt_died_after_the_partner_answered_is_not_made_twice(
    crm, monkeypatch
):
    flow = upsert_flow(crm, match_key="", lookup_path="", update_path="")
    payload = {"email": "d@x.test", "plan": "pro"}
    real_complete = idempotency.complete

    def die(*args, **kwargs):
        raise WorkerDied

    # the first attempt reaches the partner, which creates the contact; the worker dies before
    # the hub records the answer: the local idempotency record stays "in flight"
    monkeypatch.setattr(idempotency, "complete", die)
    with pytest.raises(WorkerDied):
        go(flow, payload, "evt-1")
    monkeypatch.setattr(idempotency, "complete", real_complete)
    assert SandboxContact.objects.count() == 1
    record = IdempotencyRecord.objects.get(key="flow:upsert:evt-1")
    assert record.state == "in_flight"

    # once its lease has run out, the retry takes the key over and sends the same key again:
    # the partner replays its first answer instead of creating a second contact
    IdempotencyRecord.objects.filter(pk=record.pk).update(locked_until=timezone.now())
    result = go(flow, payload, "evt-1")

    assert SandboxContact.objects.count() == 1
    assert result.run.record_id == f"c_{SandboxContact.objects.get().pk}"
    posts = SandboxRequest.objects.filter(method="POST")
    assert [p.idempotency_key for p in posts] == ["flow:upsert:evt-1", "flow:upsert:evt-1"]
    assert [p.status for p in posts] == [201, 201]
    record.refresh_from_db()
    assert record.state == "completed"


def test_run_now_from_the_console(crm, operator_client, auditor_client):
    flow = upsert_flow(crm)
    page = operator_client.get(f"/admin/flows/flow/{flow.pk}/change/")
    assert b"Run now" in page.content
    form = operator_client.get(f"/admin/flows/flow/{flow.pk}/run/")
    assert form.status_code == 200
    response = operator_client.post(
        f"/admin/flows/flow/{flow.pk}/run/",
        {"payload": '{"email": "e@x.test", "plan": "pro"}', "nonce": "n1"},
    )
    run = FlowRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/admin/flows/flowrun/{run.pk}/change/"
    assert (run.trigger, run.outcome) == ("manual", "created")
    assert SandboxContact.objects.count() == 1
    bad = operator_client.post(f"/admin/flows/flow/{flow.pk}/run/", {"payload": "{oops"})
    assert b"Not valid JSON" in bad.content
    # auditors read flows and runs but cannot run them
    assert auditor_client.get(f"/admin/flows/flowrun/{run.pk}/change/").status_code == 200
    refused = auditor_client.post(f"/admin/flows/flow/{flow.pk}/run/", {"payload": "{}"})
    assert refused.status_code == 403
    assert b"Run now" not in auditor_client.get(f"/admin/flows/flow/{flow.pk}/change/").content


def test_operators_cannot_edit_mappings_or_flows(crm, operator_client):
    flow = upsert_flow(crm)
    assert operator_client.get("/admin/flows/flow/add/").status_code == 403
    response = operator_client.post(f"/admin/flows/flow/{flow.pk}/change/", {"slug": "x"})
    assert response.status_code == 403
    assert operator_client.get("/admin/flows/mapping/add/").status_code == 403


def test_a_scheduled_flow_runs_from_its_task_and_a_disabled_one_does_not(crm):
    from flows.services.dispatch import run_scheduled

    _connection, mapping = crm
    MappingRule.objects.create(
        mapping=mapping, position=3, source="flow", target="source", transform="copy"
    )
    rule = MappingRule.objects.get(mapping=mapping, target="email")
    rule.source, rule.transform, rule.args = "", "constant", {"value": "nightly@x.test"}
    rule.save()
    flow = upsert_flow(crm, slug="nightly", trigger="schedule", cron="0 2 * * *")
    assert run_scheduled("nightly") == "succeeded"
    run = FlowRun.objects.get()
    assert run.trigger == "schedule" and run.trigger_ref.startswith("schedule:")
    assert SandboxContact.objects.get().data == {"email": "nightly@x.test", "source": "nightly"}
    flow.enabled = False
    flow.save()
    assert run_scheduled("nightly") == "skipped"


def test_no_console_page_shows_the_partner_key_after_flows_ran(crm, role_client):
    """Every list and object page of the console, for every role, after a flow called the CRM:
    the CRM's API key appears nowhere (flow runs, API calls, sandbox pages, audit...)."""
    from django.contrib import admin
    from django.urls import NoReverseMatch, reverse

    from connectors.roles import ADMINS, AUDITORS, OPERATORS

    go(upsert_flow(crm), {"email": "k@x.test", "plan": "pro"})
    key = SandboxState.get().api_key
    pages = []
    for model in admin.site._registry:
        opts = model._meta
        try:
            pages.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
        except NoReverseMatch:
            continue
        first = model.objects.first()
        if first is not None:
            pages.append(
                reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[first.pk])
            )
    assert any("/flows/flowrun/" in page for page in pages)
    for role in (None, ADMINS, OPERATORS, AUDITORS):
        client = role_client(role)
        for url in pages:
            response = client.get(url)
            assert response.status_code in (200, 302, 403), (role, url, response.status_code)
            assert key not in response.content.decode(), (role, url)


def test_the_lookup_matches_the_key_without_case(crm):
    existing = SandboxContact.objects.create(
        email="ann@x.test", data={"email": "Ann@X.test", "plan": "pro"}
    )
    flow = upsert_flow(crm)
    result = go(flow, {"email": "ann@x.test", "plan": "team"})
    assert (result.run.outcome, result.run.record_id) == ("updated", f"c_{existing.pk}")
    assert SandboxContact.objects.count() == 1

    flow.lookup_path = "/me"  # answers JSON without a results list: nothing found
    flow.save()
    assert go(flow, {"email": "z@x.test"}, "r-z").run.outcome == "created"


def test_a_lookup_answering_something_else_than_json_fails_the_run(api_connection, partner):
    from connectors.engine.errors import PermanentError
    from tests.partners import Reply

    mapping = Mapping.objects.create(slug="m2", name="m2")
    MappingRule.objects.create(mapping=mapping, position=1, source="email", target="email")
    flow = upsert_flow((api_connection, mapping), slug="html")
    partner.script(Reply(200, body=b"<html>login</html>", headers={"Content-Type": "text/html"}))
    with pytest.raises(PermanentError, match="not JSON"):
        go(flow, {"email": "a@x.test"})
    assert FlowRun.objects.get().status == "failed"
    assert [r.method for r in partner.requests] == ["GET"]  # nothing was created
