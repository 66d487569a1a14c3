"""Every table that grows has a retention and a purge, scheduled after migrate; what is still
in use is never purged."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from connectors.models import ApiCall
from connectors.tasks import purge_api_calls
from flows import tasks as flow_tasks
from flows.models import Flow, FlowRun, Mapping
from sandbox import tasks as sandbox_tasks
from sandbox.models import SandboxRequest
from syncs import tasks as sync_tasks
from syncs.models import SyncRun
from tests.syncing import mirror_job
from webhooks.models import EventAttempt, WebhookEvent
from webhooks.services import processing
from webhooks.services.processing import drop_old_bodies, purge_old_events

pytestmark = pytest.mark.django_db


def small_passes(settings, rows: int, batch: int = 2) -> None:
    """Purge passes of ``rows`` rows in batches of ``batch``, without pauses."""
    settings.HUB_PURGE_MAX_ROWS_PER_PASS, settings.HUB_PURGE_BATCH_ROWS = rows, batch
    settings.HUB_PURGE_PAUSE_SECONDS = 0


def endpoint_of(make_endpoint, connection, slug: str):
    endpoint = make_endpoint("github", "s3cret", slug=slug)
    endpoint.connection = connection
    endpoint.save()
    return endpoint


def aged(model, row, field, days):
    model.objects.filter(pk=row.pk).update(**{field: timezone.now() - timedelta(days=days)})


def test_old_rows_go_and_rows_in_use_stay(api_connection, make_endpoint, settings):
    # given a connection keeping 30 days, and rows on both sides of that line
    api_connection.retention_days = 30
    api_connection.save()
    endpoint = endpoint_of(make_endpoint, api_connection, "kept")
    call_old, call_new = (
        ApiCall.objects.create(connection=api_connection, method="GET", path="/x") for _ in range(2)
    )
    aged(ApiCall, call_old, "created_at", 31)
    done_old, pending_old, done_new = (
        WebhookEvent.objects.create(endpoint=endpoint, event_id=f"e{i}", body=b"{}", status=s)
        for i, s in enumerate(["processed", "retrying", "processed"])
    )
    EventAttempt.objects.create(event=done_old, number=1, outcome="processed")
    for event in (done_old, pending_old):
        aged(WebhookEvent, event, "received_at", 31)
    flow = Flow.objects.create(
        slug="f",
        name="f",
        trigger="manual",
        connection=api_connection,
        mapping=Mapping.objects.create(slug="m", name="m"),
        path="/x",
    )
    run_old, running_old, run_new = (
        FlowRun.objects.create(flow=flow, trigger="manual", status=s, correlation_id="c")
        for s in ["succeeded", "running", "failed"]
    )
    for run in (run_old, running_old):
        aged(FlowRun, run, "started_at", 31)
    job = mirror_job(api_connection)
    sync_old, sync_running_old, sync_new = (
        SyncRun.objects.create(job=job, trigger="manual", mode="full", status=s, correlation_id="c")
        for s in ["succeeded", "running", "skipped"]
    )
    for run in (sync_old, sync_running_old):
        aged(SyncRun, run, "started_at", 31)
    settings.HUB_SANDBOX_RETENTION_DAYS = 7
    request_old, request_new = (SandboxRequest.objects.create(method="GET", path="/") for _ in "ab")
    aged(SandboxRequest, request_old, "received_at", 8)
    # when every purge runs
    assert purge_api_calls() == 1
    assert purge_old_events() == 1
    assert flow_tasks.purge_old_runs() == 1
    assert sync_tasks.purge_old_runs() == 1
    assert sandbox_tasks.purge_requests() == 1
    # then what is past retention and finished is gone, with its attempts; the rest stays
    assert list(ApiCall.objects.values_list("pk", flat=True)) == [call_new.pk]
    assert sorted(WebhookEvent.objects.values_list("pk", flat=True)) == [
        pending_old.pk,
        done_new.pk,
    ]
    assert not EventAttempt.objects.exists()
    assert sorted(FlowRun.objects.values_list("pk", flat=True)) == [running_old.pk, run_new.pk]
    assert sorted(SyncRun.objects.values_list("pk", flat=True)) == [
        sync_running_old.pk,
        sync_new.pk,
    ]
    assert list(SandboxRequest.objects.values_list("pk", flat=True)) == [request_new.pk]


def test_every_purge_is_scheduled_after_migrate():
    from django.core.management import call_command
    from django_q.models import Schedule

    call_command("migrate", verbosity=0)
    funcs = set(Schedule.objects.values_list("func", flat=True))
    assert {
        "connectors.tasks.purge_api_calls",
        "connectors.tasks.purge_idempotency_records",
        "webhooks.tasks.purge_events",
        "webhooks.tasks.drop_bodies",
        "flows.tasks.purge_old_runs",
        "syncs.tasks.purge_old_runs",
        "sandbox.tasks.purge_requests",
    } <= funcs


def test_a_pass_deletes_at_most_its_budget_and_the_next_pass_goes_on(
    api_connection, make_endpoint, settings
):
    """A backlog of expired rows costs each pass a bounded amount of work: the pass stops at
    HUB_PURGE_MAX_ROWS_PER_PASS, in batches of HUB_PURGE_BATCH_ROWS; the next pass goes on."""
    small_passes(settings, 5)
    api_connection.retention_days = 30
    api_connection.save()
    endpoint = endpoint_of(make_endpoint, api_connection, "budget")
    old = timezone.now() - timedelta(days=40)
    WebhookEvent.objects.bulk_create(
        WebhookEvent(
            endpoint=endpoint, event_id=f"old{i}", body=b"{}", status="processed", received_at=old
        )
        for i in range(12)
    )
    kept = WebhookEvent.objects.create(
        endpoint=endpoint, event_id="new", body=b"{}", status="processed"
    )
    ApiCall.objects.bulk_create(
        ApiCall(connection=api_connection, method="GET", path="/x", created_at=old)
        for _ in range(7)
    )
    assert [purge_old_events() for _ in range(4)] == [5, 5, 2, 0]
    assert list(WebhookEvent.objects.all()) == [kept]
    assert [purge_api_calls() for _ in range(3)] == [5, 2, 0]


def test_payload_retention_drops_bodies_of_done_events_and_keeps_their_metadata(
    api_connection, connection, make_endpoint, settings, admin_client
):
    """After payload_retention_days, processed (resolved, rejected) events lose body and
    headers and keep ids, statuses and attempts; events waiting for a person keep theirs;
    each pass goes on where the last one stopped and never reads the dropped ones again."""
    small_passes(settings, 3)
    api_connection.payload_retention_days = 7
    api_connection.save()
    endpoint = endpoint_of(make_endpoint, api_connection, "bodies")
    other = make_endpoint("github", "s3cret", slug="kept-bodies")  # no payload retention
    body, headers = b'{"email": "ada@example.test"}', {"X-Github-Event": "push"}
    ages = [("processed", 9), ("failed", 9), ("resolved", 8), ("rejected", 8), ("processed", 2)]
    events = [
        WebhookEvent.objects.create(
            endpoint=endpoint, event_id=f"e{i}", body=body, headers=headers, status=status
        )
        for i, (status, _days) in enumerate(ages)
    ]
    elsewhere = WebhookEvent.objects.create(
        endpoint=other, event_id="o", body=body, status="processed"
    )
    for event, (_status, days) in zip([*events, elsewhere], [*ages, ("", 9)], strict=True):
        aged(WebhookEvent, event, "received_at", days)
    EventAttempt.objects.create(event=events[0], number=1, outcome="processed")

    # a pass reads at most its budget (3 rows), the next goes on; then nothing is left to read
    assert [drop_old_bodies() for _ in range(3)] == [2, 1, 0]
    dropped = {e.event_id: e for e in WebhookEvent.objects.filter(redaction="retention")}
    assert sorted(dropped) == ["e0", "e2", "e3"]
    for event in dropped.values():
        assert (bytes(event.body), event.headers, event.redacted_at is not None) == (b"", {}, True)
    assert dropped["e0"].status == "processed" and dropped["e0"].attempt_log.count() == 1
    for kept in [events[1], events[4], elsewhere]:
        kept.refresh_from_db()
        assert (bytes(kept.body), kept.redaction) == (body, "")
    endpoint.refresh_from_db()
    assert endpoint.bodies_dropped_before is not None

    # a dropped event cannot run again, and its page says why its body is gone
    assert not processing.replay(dropped["e0"]) and not processing.retry_now(dropped["e0"])
    page = admin_client.get(f"/admin/webhooks/webhookevent/{dropped['e0'].pk}/change/")
    assert "payload retention (its metadata is kept)" in page.content.decode()
    assert "ada@example.test" not in page.content.decode()
