"""A task never runs past its timeout: inside a task the calls share its remaining time, and a
long wait becomes a scheduled retry instead of a sleeping worker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors import hub
from connectors.engine import budget
from tests.partners import Reply

pytestmark = pytest.mark.django_db


def test_outside_a_task_a_short_retry_after_is_waited_for(api_connection, partner):
    partner.script(Reply(503, headers={"Retry-After": "1"}), Reply(200, json={"ok": 1}))
    assert hub.call("partner", "GET", "/x").status == 200
    assert len(partner.requests) == 2


def test_inside_a_task_a_long_wait_is_a_scheduled_retry_not_a_sleep(
    api_connection, partner, settings
):
    settings.HUB_INLINE_WAIT_SECONDS = 0.5
    partner.script(Reply(503, headers={"Retry-After": "3"}), Reply(200, json={"ok": 1}))
    with budget.task_budget(60), pytest.raises(hub.RetryableError) as raised:
        hub.call("partner", "GET", "/x")
    # one attempt only: the worker did not sleep the 3 s, the retry is for then
    assert len(partner.requests) == 1
    ahead = (raised.value.retry_at - datetime.now(UTC)).total_seconds()
    assert 2 < ahead <= 3


def test_a_call_never_outlives_the_task(api_connection, partner):
    api_connection.read_timeout = 30
    api_connection.save()
    partner.script(Reply(200, json={"late": True}, delay=3))
    with budget.task_budget(0.5), pytest.raises(hub.RetryableError):
        hub.call("partner", "GET", "/slow")
    # the attempt's read timeout was the task's half second, not the connection's 30 s,
    # and no second attempt was made past the budget
    assert len(partner.requests) == 1


def test_an_events_long_wait_is_its_next_attempt(make_endpoint, api_connection, partner, settings):
    import json

    from flows.models import Flow, Mapping, MappingRule
    from webhooks.models import WebhookEvent
    from webhooks.services.processing import process_event

    settings.HUB_INLINE_WAIT_SECONDS = 0.5
    endpoint = make_endpoint("github", "s3cret", slug="budget")
    mapping = Mapping.objects.create(slug="m", name="m")
    MappingRule.objects.create(mapping=mapping, position=1, source="id", target="id")
    Flow.objects.create(
        slug="call",
        name="call",
        trigger="webhook",
        endpoint=endpoint,
        connection=api_connection,
        mapping=mapping,
        path="/things",
    )
    partner.script(Reply(503, headers={"Retry-After": "120"}))
    event = WebhookEvent.objects.create(
        endpoint=endpoint, event_id="b-1", body=json.dumps({"id": 1}).encode()
    )
    assert process_event(event.pk) == "retry"
    event.refresh_from_db()
    assert event.status == "retrying" and len(partner.requests) == 1
    assert event.next_attempt_at >= datetime.now(UTC) + timedelta(seconds=100)


def test_the_task_budget_fits_inside_the_clusters_timeout(settings):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "timeout": 120}
    assert budget.task_seconds() == 105
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "timeout": 20}
    assert budget.task_seconds() == 15
