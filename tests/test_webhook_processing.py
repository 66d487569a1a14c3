"""Processing: handlers, retries with backoff, failures, dead letters, the sweeper, and the
operator's retry, resolve and replay, in the console and on the command line."""

from __future__ import annotations

import io
import re
import secrets as pysecrets
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from connectors import hub
from connectors.models import ApiCall
from monitoring.services.incidents import run_pass
from tests import signing
from webhooks import handlers
from webhooks.models import EventAttempt, WebhookEvent
from webhooks.services.processing import process_event, sweep

pytestmark = pytest.mark.django_db


@pytest.fixture
def registered():
    """Register handlers for one test only."""
    before = dict(handlers.registry)
    yield handlers.handler
    handlers.registry.clear()
    handlers.registry.update(before)


@pytest.fixture
def delivered(make_endpoint, post_webhook):
    """delivered() → a stored event on endpoint 'gh' (a signed GitHub push)."""
    secret = pysecrets.token_hex(20)
    endpoint = make_endpoint("github", secret, slug="gh")
    counter = iter(range(1, 1000))

    def deliver() -> WebhookEvent:
        body = signing.fixture("github", "push")
        response = post_webhook(
            endpoint, body, signing.github_headers(body, secret, f"d-{next(counter)}")
        )
        assert response.status_code == 202
        return WebhookEvent.objects.get(pk=response.json()["event"])

    return deliver


def due_now(event):
    WebhookEvent.objects.filter(pk=event.pk).update(next_attempt_at=timezone.now())


def test_a_handler_runs_under_the_events_correlation_id(
    registered, delivered, api_connection, partner
):
    seen = []

    @registered(endpoint="gh", event_type="push")
    def on_push(event):
        seen.append(event)
        hub.call("partner", "GET", "/contacts")

    event = delivered()
    assert process_event(event.pk) == "processed"
    event.refresh_from_db()
    assert event.status == "processed" and event.attempts == 1 and event.processed_at
    assert seen[0].payload["ref"] == "refs/heads/main" and seen[0].event_type == "push"
    assert partner.requests[0].headers["X-Request-ID"] == event.correlation_id
    assert ApiCall.objects.get().correlation_id == event.correlation_id
    assert list(event.attempt_log.values_list("outcome", flat=True)) == ["processed"]
    # processing it again does nothing: it is not due
    assert process_event(event.pk) == "skipped"


def test_a_transient_failure_is_retried_on_the_schedule(registered, delivered, settings):
    settings.HUB_WEBHOOK_RETRY_SCHEDULE = [10, 60]
    calls = []

    @registered(endpoint="gh", event_type="*")
    def flaky(event):
        calls.append(event.attempt)
        if event.attempt < 2:
            raise hub.RetryableError("partner timeout")

    event = delivered()
    before = timezone.now()
    assert process_event(event.pk) == "retry"
    event.refresh_from_db()
    assert event.status == "retrying" and "partner timeout" in event.last_error
    wait = (event.next_attempt_at - before).total_seconds()
    assert 8 <= wait <= 12.5  # 10 s with ±20 % jitter
    assert process_event(event.pk) == "skipped"  # not due yet
    due_now(event)
    assert process_event(event.pk) == "processed"
    assert calls == [1, 2]
    outcomes = list(EventAttempt.objects.filter(event=event).values_list("outcome", flat=True))
    assert outcomes == ["retry", "processed"]


def test_a_partners_retry_at_is_not_undercut(registered, delivered, settings):
    settings.HUB_WEBHOOK_RETRY_SCHEDULE = [10]
    later = timezone.now() + timedelta(hours=2)

    @registered(endpoint="gh")
    def quota(event):
        raise hub.QuotaExceededError("429", retry_at=later)

    event = delivered()
    process_event(event.pk)
    event.refresh_from_db()
    assert event.next_attempt_at == later


def test_a_permanent_failure_waits_for_a_person(registered, delivered):
    @registered(endpoint="gh")
    def bad_data(event):
        raise hub.PermanentError("422 from the CRM: email is invalid")

    event = delivered()
    assert process_event(event.pk) == "failed"
    event.refresh_from_db()
    assert event.status == "failed" and "email is invalid" in event.last_error
    assert event.next_attempt_at is None


def test_attempts_exhausted_means_dead(registered, delivered, settings):
    settings.HUB_WEBHOOK_RETRY_SCHEDULE = [1, 1]

    @registered(endpoint="gh")
    def down(event):
        raise ConnectionError("partner down")

    event = delivered()
    outcomes = []
    for _ in range(3):
        outcomes.append(process_event(event.pk))
        due_now(event)
    assert outcomes == ["retry", "retry", "dead"]
    event.refresh_from_db()
    assert event.status == "dead" and event.attempts == 3


def test_the_sweeper_takes_back_an_expired_lease_and_enqueues_due_work(delivered):
    event = delivered()
    # a worker claimed it and died
    WebhookEvent.objects.filter(pk=event.pk).update(
        status="processing",
        attempts=1,
        lease_until=timezone.now() - timedelta(seconds=1),
        enqueued_at=timezone.now() - timedelta(minutes=5),
    )
    result = sweep()
    event.refresh_from_db()
    assert result == {"lost": 1, "enqueued": 1, "interrupted_flow_runs": 0, "resumed_flow_runs": 0}
    assert event.status == "retrying" and "lease expired" in event.last_error
    assert event.attempt_log.get().outcome == "lost"
    assert event.enqueued_at > timezone.now() - timedelta(seconds=30)
    # nothing is enqueued twice while its task is fresh
    assert sweep() == {"lost": 0, "enqueued": 0, "interrupted_flow_runs": 0, "resumed_flow_runs": 0}
    assert process_event(event.pk) == "unhandled"  # nothing is registered for it


def test_an_event_nothing_handles_is_unhandled_and_replays_once_something_does(
    registered, delivered, operator_client
):
    # given an event no handler and no flow takes
    event = delivered()
    assert process_event(event.pk) == "unhandled"
    event.refresh_from_db()
    assert (event.status, event.processed_at is not None) == ("unhandled", True)
    assert event.last_error.startswith("no handler and no flow for")
    # the console says so, offers Replay and not Retry (a retry would change nothing)
    page = operator_client.get(reverse("admin:webhooks_webhookevent_change", args=[event.pk]))
    html = page.content.decode()
    assert "No handler (nothing is set up for its type)" in html
    assert "Replay…" in html and "Retry now" not in html
    # once a handler exists, a replay runs it
    seen = []

    @registered(endpoint="gh")
    def now_handled(parsed):
        seen.append(parsed.event_id)

    assert (
        operator_client.post(
            reverse("admin:webhooks_event_replay", args=[event.pk]), {"confirm": "yes"}
        ).status_code
        == 302
    )
    assert process_event(event.pk) == "processed" and seen == [event.event_id]
    page = operator_client.get(reverse("admin:webhooks_webhookevent_change", args=[event.pk]))
    assert "Retry now" not in page.content.decode()  # processed: nothing to retry
    # each attempt says how it ended, and the dashboard counts them apart
    outcomes = list(event.attempt_log.order_by("number").values_list("outcome", flat=True))
    assert outcomes == ["unhandled", "processed"]
    run_pass()
    home = operator_client.get(reverse("admin:index")).content.decode()
    figures = home.split("Events, last 24 h")[1].split("</dl>")[0]
    assert re.search(r"<dt>Processed</dt><dd>1</dd>", figures)
    assert re.search(r"<dt>Unhandled</dt><dd><strong[^>]*hub-warning[^>]*>[^<]*1</strong>", figures)


def test_an_operator_retries_a_failed_event_from_the_console(
    registered, delivered, operator_client
):
    state = {"fail": True}

    @registered(endpoint="gh")
    def sometimes(event):
        if state["fail"]:
            raise hub.PermanentError("mapping error: rule 2 (email) is missing")

    event = delivered()
    process_event(event.pk)
    page = operator_client.get(reverse("admin:webhooks_webhookevent_change", args=[event.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Retry now" in html and "mapping error: rule 2" in html
    # when the operator fixes the cause and clicks "Retry now"
    state["fail"] = False
    response = operator_client.post(
        reverse("admin:webhooks_event_retry", args=[event.pk]), follow=True
    )
    assert "Queued for retry now." in response.content.decode()
    event.refresh_from_db()
    assert event.status == "retrying"
    assert process_event(event.pk) == "processed"


def test_bulk_retry_resolve_and_permissions(registered, delivered, operator_client, auditor_client):
    @registered(endpoint="gh")
    def broken(event):
        raise hub.PermanentError("bad")

    first, second = delivered(), delivered()
    process_event(first.pk)
    process_event(second.pk)
    changelist = reverse("admin:webhooks_webhookevent_changelist")
    # auditors read but cannot retry
    assert auditor_client.get(changelist).status_code == 200
    assert (
        auditor_client.post(reverse("admin:webhooks_event_retry", args=[first.pk])).status_code
        == 403
    )
    operator_client.post(changelist, {"action": "retry_selected", "_selected_action": [first.pk]})
    first.refresh_from_db()
    assert first.status == "retrying"
    # resolve asks for a reason first
    ask = operator_client.post(
        changelist, {"action": "resolve_selected", "_selected_action": [second.pk]}
    )
    assert "Reason" in ask.content.decode()
    operator_client.post(
        changelist,
        {
            "action": "resolve_selected",
            "_selected_action": [second.pk],
            "reason": "fixed by hand in the CRM",
        },
    )
    second.refresh_from_db()
    assert second.status == "resolved" and "fixed by hand in the CRM" in second.resolution_note
    assert "operators" in second.resolution_note


def test_replay_of_a_processed_event_asks_first_then_changes_nothing_at_the_partner(
    registered, delivered, operator_client, api_connection, partner
):
    @registered(endpoint="gh")
    def create(event):
        hub.call(
            "partner",
            "POST",
            "/contacts",
            json={"id": event.event_id},
            idempotency_key=f"webhook-event-{event.pk}",
        )

    event = delivered()
    process_event(event.pk)
    url = reverse("admin:webhooks_event_replay", args=[event.pk])
    confirm = operator_client.post(url)
    assert "Effects are idempotent" in confirm.content.decode()
    event.refresh_from_db()
    assert event.status == "processed"  # not yet
    operator_client.post(url, {"confirm": "yes"})
    assert process_event(event.pk) == "processed"
    assert len(partner.requests) == 1  # the second run replayed the stored result


def test_operators_cannot_edit_endpoints(operator_client, delivered):
    event = delivered()
    url = reverse("admin:webhooks_webhookendpoint_change", args=[event.endpoint.pk])
    assert operator_client.get(url).status_code == 200
    assert operator_client.post(url, {"slug": "stolen"}).status_code == 403


def test_the_retry_command_filters_by_status_endpoint_and_date(registered, delivered):
    @registered(endpoint="gh")
    def broken(event):
        raise hub.PermanentError("bad")

    old, recent = delivered(), delivered()
    for event in (old, recent):
        process_event(event.pk)
    WebhookEvent.objects.filter(pk=old.pk).update(received_at=timezone.now() - timedelta(days=3))
    since = (timezone.now() - timedelta(days=1)).date().isoformat()
    out = io.StringIO()
    call_command(
        "webhooks", "retry", "--status", "failed", "--endpoint", "gh", "--since", since, stdout=out
    )
    assert "1 event(s) queued for retry." in out.getvalue()
    statuses = dict(WebhookEvent.objects.values_list("pk", "status"))
    assert statuses == {old.pk: "failed", recent.pk: "retrying"}


def test_old_final_events_are_purged_by_retention_and_pending_ones_kept(delivered):
    from webhooks.services.processing import purge_old_events

    done, pending, recent = delivered(), delivered(), delivered()
    WebhookEvent.objects.filter(pk=done.pk).update(status="processed")
    long_ago = timezone.now() - timedelta(days=done.endpoint.connection.retention_days + 1)
    WebhookEvent.objects.filter(pk__in=[done.pk, pending.pk]).update(received_at=long_ago)
    assert purge_old_events() == 1
    assert set(WebhookEvent.objects.values_list("pk", flat=True)) == {pending.pk, recent.pk}


def test_webhook_pages_never_show_the_signing_secret(
    make_endpoint, post_webhook, integration_admin_client, operator_client, auditor_client
):
    secret = "whsec_" + pysecrets.token_hex(16)
    endpoint = make_endpoint("stripe", secret, slug="stripe-in")
    body = signing.fixture("stripe", "payment_intent.succeeded")
    response = post_webhook(endpoint, body, signing.stripe_headers(body, secret))
    event_pk = response.json()["event"]
    urls = [
        reverse("admin:webhooks_webhookendpoint_changelist"),
        reverse("admin:webhooks_webhookendpoint_change", args=[endpoint.pk]),
        reverse("admin:webhooks_webhookevent_changelist"),
        reverse("admin:webhooks_webhookevent_change", args=[event_pk]),
    ]
    for client in (integration_admin_client, operator_client, auditor_client):
        for url in urls:
            page = client.get(url)
            assert page.status_code == 200, url
            assert secret not in page.content.decode(), url
    endpoint_page = integration_admin_client.get(urls[1]).content.decode()
    assert "1 usable" in endpoint_page


def test_an_endpoint_without_secret_says_why_in_red(make_endpoint, integration_admin_client):
    endpoint = make_endpoint("github", None, slug="gh-nosecret")
    page = integration_admin_client.get(
        reverse("admin:webhooks_webhookendpoint_change", args=[endpoint.pk])
    ).content.decode()
    assert "no usable webhook signing secret on the connection: every delivery gets 503" in page


def test_an_unsigned_endpoint_is_shown_in_red(make_endpoint, integration_admin_client):
    make_endpoint("", None, slug="legacy", unsigned=True)
    page = integration_admin_client.get(
        reverse("admin:webhooks_webhookendpoint_changelist")
    ).content.decode()
    assert "UNSIGNED: anyone who knows the URL can post" in page
