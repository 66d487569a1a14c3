"""The hub's REST API over real HTTP: token authentication with scopes, a manual flow run into
the sandbox CRM, the Idempotency-Key header (replay, 422 on another body), and the OpenAPI
schema and its offline docs page."""

from __future__ import annotations

import pytest
import requests
from django.utils import timezone

from api.models import ApiToken
from connectors.models import Connection
from flows.models import Flow, FlowRun, Mapping, MappingRule
from sandbox.models import SandboxContact, SandboxRequest, SandboxState

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def crm(sandbox_crm, live_server):
    connection = sandbox_crm
    mapping = Mapping.objects.create(slug="signup", name="Signup → contact")
    MappingRule.objects.create(
        mapping=mapping, position=1, source="email", target="email", transform="lower"
    )
    MappingRule.objects.create(mapping=mapping, position=2, source="name", target="name")
    Flow.objects.create(
        slug="signup-to-crm",
        name="Signup → CRM",
        trigger="manual",
        connection=connection,
        mapping=mapping,
        path="/contacts",
        match_key="email",
        lookup_path="/contacts?email={email}",
        update_path="/contacts/{id}",
    )
    return live_server.url


def token(*scopes):
    return ApiToken.issue("website", list(scopes))[1]


def run(base, bearer, body, key=None):
    headers = {"Authorization": f"Bearer {bearer}"}
    if key:
        headers["Idempotency-Key"] = key
    return requests.post(
        f"{base}/api/flows/signup-to-crm/run/", json=body, headers=headers, timeout=10
    )


def test_a_manual_run_upserts_and_answers_with_the_run(crm):
    bearer = token("flows:run", "flows:read")
    response = run(crm, bearer, {"payload": {"email": "Alan@Example.test", "name": "Alan"}})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "succeeded" and body["outcome"] == "created"
    assert response.headers["Location"] == f"/api/runs/{body['id']}/"
    contact = SandboxContact.objects.get()
    assert contact.data == {"email": "alan@example.test", "name": "Alan"}
    detail = requests.get(
        f"{crm}/api/runs/{body['id']}/", headers={"Authorization": f"Bearer {bearer}"}, timeout=10
    )
    assert detail.json()["record_id"] == f"c_{contact.pk}"
    # the answer never echoes the payload (personal data stays in the hub's run, not the log)
    assert "alan@example.test" not in response.text


def test_the_same_idempotency_key_replays_the_first_answer_and_creates_nothing(crm):
    bearer = token("flows:run")
    body = {"payload": {"email": "ida@example.test", "name": "Ida"}}
    first = run(crm, bearer, body, key="signup-1")
    again = run(crm, bearer, body, key="signup-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert FlowRun.objects.count() == 1
    assert SandboxRequest.objects.filter(method="POST").count() == 1


def test_the_same_key_with_another_body_is_refused_with_422(crm):
    bearer = token("flows:run")
    run(crm, bearer, {"payload": {"email": "a@example.test"}}, key="k-1")
    other = run(crm, bearer, {"payload": {"email": "b@example.test"}}, key="k-1")
    assert other.status_code == 422
    assert "different request body" in other.json()["detail"]
    assert SandboxContact.objects.count() == 1


def test_a_transient_failure_answers_503_and_a_retry_with_the_key_creates_once(crm):
    from connectors.engine.config_cache import bump_generation

    Connection.objects.filter(slug="crm").update(retry_max_attempts=1)
    bump_generation()
    SandboxState.objects.update(fail_next=1)
    bearer = token("flows:run")
    body = {"payload": {"email": "edsger@example.test"}}
    failed = run(crm, bearer, body, key="retry-me")
    assert failed.status_code == 503 and failed.headers["Retry-After"] == "30"
    assert failed.json()["status"] == "retrying"
    again = run(crm, bearer, body, key="retry-me")
    assert again.status_code == 201, again.text
    assert "Idempotent-Replayed" not in again.headers
    assert SandboxContact.objects.count() == 1


def test_a_workflow_runs_without_waiting_carried_by_the_hub_through_a_transient_error(crm):
    from datetime import timedelta

    from django_q.brokers import get_broker

    from connectors.engine.config_cache import bump_generation
    from flows.services import workflow
    from tests.processes import purge_queue

    bearer = token("flows:run")
    body = {"payload": {"email": "grace@example.test", "name": "Grace"}, "wait": False}
    # a one-action flow runs in the request only
    refused = run(crm, bearer, body)
    assert refused.status_code == 400
    assert "only a workflow runs without waiting" in refused.json()["detail"]
    assert FlowRun.objects.count() == 0
    flow = Flow.objects.get()
    flow.steps = [{"name": "contact", "kind": "call", "path": "/contacts", "mapping": "signup"}]
    flow.full_clean()
    flow.save()
    purge_queue()
    accepted = run(crm, bearer, body, key="form-7")
    assert accepted.status_code == 202, accepted.text
    answer = accepted.json()
    assert answer["status"] == "running" and accepted.headers["Location"] == (
        f"/api/runs/{answer['id']}/"
    )
    # stored and queued for a worker; nothing sent yet
    assert get_broker().queue_size() == 1 and SandboxRequest.objects.count() == 0
    again = run(crm, bearer, body, key="form-7")
    assert again.status_code == 202 and again.json()["id"] == answer["id"]
    assert FlowRun.objects.count() == 1
    # the worker's part, here: the CRM fails; the hub keeps the run and resumes it later
    # itself (no 503 went to the site, which would have had to retry)
    Connection.objects.filter(slug="crm").update(retry_max_attempts=1)
    bump_generation()
    SandboxState.objects.update(fail_next=1)
    assert workflow.resume_run(answer["id"]) == "waiting"
    waiting = FlowRun.objects.get()
    assert waiting.resume_at > timezone.now() + timedelta(seconds=20)
    assert "503" in waiting.error
    FlowRun.objects.update(resume_at=timezone.now())  # its backoff is over
    assert workflow.resume_due() == 1
    assert workflow.resume_run(answer["id"]) == "succeeded"
    assert SandboxContact.objects.get().data == {"email": "grace@example.test", "name": "Grace"}
    purge_queue()


def test_a_mapping_error_answers_422_with_the_rule(crm):
    rule = Mapping.objects.get().rules.get(target="email")
    rule.required = True
    rule.save()  # a saved rule drops every process's cached copy of the mapping
    response = run(crm, token("flows:run"), {"payload": {"name": "no email"}})
    assert response.status_code == 422
    assert 'rule 1 (email → email): required field "email" is missing' in response.json()["error"]


@pytest.mark.parametrize(
    ("header", "status", "message"),
    [
        (None, 401, "Authentication credentials were not provided."),
        ("Bearer hub_unknown_token_value", 401, "Unknown token."),
        ("Token abc", 401, "Send the token as 'Authorization: Bearer hub_…'."),
        ("Bearer", 401, "Send the token as 'Authorization: Bearer hub_…'."),
    ],
)
def test_bad_or_missing_tokens_get_401_with_a_reason(crm, header, status, message):
    headers = {"Authorization": header} if header else {}
    response = requests.post(
        f"{crm}/api/flows/signup-to-crm/run/", json={"payload": {}}, headers=headers, timeout=10
    )
    assert response.status_code == status
    assert response.json()["detail"] == message


def test_scopes_are_enforced_per_token(crm):
    reader = token("flows:read")
    refused = run(crm, reader, {"payload": {"email": "x@example.test"}})
    assert refused.status_code == 403
    assert refused.json()["detail"] == "This token lacks the scope 'flows:run'."
    runner = token("flows:run")
    listing = requests.get(
        f"{crm}/api/flows/", headers={"Authorization": f"Bearer {runner}"}, timeout=10
    )
    assert listing.status_code == 403
    ok = requests.get(
        f"{crm}/api/flows/", headers={"Authorization": f"Bearer {reader}"}, timeout=10
    )
    assert [f["slug"] for f in ok.json()] == ["signup-to-crm"]


def test_revoked_and_expired_tokens_are_refused(crm):
    bearer = token("flows:run")
    ApiToken.objects.update(revoked_at=timezone.now())
    assert run(crm, bearer, {"payload": {}}).json()["detail"] == (
        "This token is revoked or expired."
    )


def test_tokens_are_stored_as_digests_only():
    row, value = ApiToken.issue("site", ["flows:run"])
    stored = ApiToken.objects.filter(pk=row.pk).values_list("prefix", "key_digest").get()
    assert value not in "".join(stored) and value.startswith(stored[0])
    with pytest.raises(ValueError, match="unknown scope 'admin'"):
        ApiToken.issue("site", ["admin"])


def test_malformed_json_and_bad_keys_get_400(crm):
    bearer = token("flows:run")
    broken = requests.post(
        f"{crm}/api/flows/signup-to-crm/run/",
        data=b"{not json",
        headers={"Authorization": f"Bearer {bearer}", "Content-Type": "application/json"},
        timeout=10,
    )
    assert broken.status_code == 400 and "JSON parse error" in broken.json()["detail"]
    missing = run(crm, bearer, {"data": {}})
    assert missing.status_code == 400 and "payload" in missing.json()["errors"]
    assert missing.json()["detail"].startswith("The request is not valid: payload:")
    long_key = run(crm, bearer, {"payload": {}}, key="k" * 300)
    assert long_key.status_code == 400
    unknown = requests.post(
        f"{crm}/api/flows/nope/run/",
        json={"payload": {}},
        headers={"Authorization": f"Bearer {bearer}"},
        timeout=10,
    )
    assert unknown.status_code == 404


def test_the_openapi_schema_and_its_docs_page_work_offline(crm):
    schema = requests.get(f"{crm}/api/schema/?format=json", timeout=10)
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/flows/{slug}/run/" in paths
    parameters = paths["/api/flows/{slug}/run/"]["post"]["parameters"]
    assert any(p["name"] == "Idempotency-Key" for p in parameters)
    assert "hubToken" in schema.json()["components"]["securitySchemes"]
    docs = requests.get(f"{crm}/api/docs/", timeout=10)
    assert docs.status_code == 200
    # Swagger UI comes from the sidecar package (static files), not from a CDN
    assert "cdn.jsdelivr" not in docs.text and "swagger-ui" in docs.text


def test_a_token_created_in_the_console_is_shown_once_and_never_again(integration_admin_client):
    response = integration_admin_client.post(
        "/admin/api/apitoken/add/",
        {"name": "website", "scopes": ["flows:run"]},
        follow=True,
    )
    text = response.content.decode()
    row = ApiToken.objects.get()
    shown = [word for word in text.split() if word.startswith("hub_") and len(word) > 30]
    assert len(shown) == 1, "the token is shown once, in the creation message"
    token = shown[0]
    assert token.startswith(row.prefix) and row.scopes == ["flows:run"]
    from api.models import digest

    assert row.key_digest == digest(token)
    for url in ["/admin/api/apitoken/", f"/admin/api/apitoken/{row.pk}/change/"]:
        assert token not in integration_admin_client.get(url).content.decode()


def test_every_error_is_json_with_the_same_shape(crm):
    bearer = token("flows:run", "flows:read")
    auth = {"Authorization": f"Bearer {bearer}", "Content-Type": "application/json"}
    url = f"{crm}/api/flows/signup-to-crm/run/"
    deep = requests.post(url, data=b"[" * 1000 + b"]" * 1000, headers=auth, timeout=10)
    large = requests.post(
        url, data=b'{"payload": "' + b"x" * 3_000_000 + b'"}', headers=auth, timeout=30
    )
    null_byte = requests.post(f"{crm}/api/flows/a%00b/run/", json={}, headers=auth, timeout=10)
    nowhere = requests.get(f"{crm}/api/nothing/here/", headers=auth, timeout=10)
    browsable = requests.get(f"{crm}/api/flows/?format=api", headers=auth, timeout=10)
    answers = [deep, large, null_byte, nowhere, browsable]
    assert [r.status_code for r in answers] == [400, 413, 404, 404, 404]
    for response in answers:
        assert response.headers["Content-Type"].startswith("application/json"), response.text
        assert isinstance(response.json()["detail"], str)
    assert "nested too deeply" in deep.json()["detail"]
    assert "too large" in large.json()["detail"]


def test_a_value_that_cannot_be_sent_is_a_permanent_error_naming_the_field(crm):
    bearer = token("flows:run", "flows:read")
    # JSON can carry a lone surrogate; no UTF-8 request can
    response = requests.post(
        f"{crm}/api/flows/signup-to-crm/run/",
        data=b'{"payload": {"email": "\\ud800@example.test", "name": "A"}}',
        headers={"Authorization": f"Bearer {bearer}", "Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 422
    run_row = response.json()
    assert run_row["status"] == "failed"
    assert 'field "email"' in run_row["error"] and "lone surrogate" in run_row["error"]
    assert "Retry-After" not in response.headers
    assert not SandboxRequest.objects.filter(method="POST").exists()


def test_the_api_answers_as_its_openapi_schema_says(crm):
    """schemathesis generates requests from the live schema (valid and invalid ones) and checks
    every answer against it: status codes, content types, bodies. Bounded: a few dozen
    requests per operation, derandomized, so the run is short and repeatable."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    bearer = token("flows:run", "flows:read")
    schema = schemathesis.openapi.from_url(f"{crm}/api/schema/?format=json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} >= {
        "GET /api/flows/",
        "POST /api/flows/{slug}/run/",
        "GET /api/runs/{id}/",
    }
    for operation in operations:

        @settings(
            max_examples=30,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def check(case):
            case.call_and_validate(
                base_url=crm, headers={"Authorization": f"Bearer {bearer}"}, timeout=30
            )

        check()
