"""Incidents from real traffic: a scripted partner fails and recovers; a real SMTP server and a
local Slack receive the messages."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from connectors.engine.errors import HubError
from connectors.hub import call
from connectors.models import ApiCall
from monitoring.models import Incident, Notification, RuleSetting
from monitoring.services.incidents import acknowledge, run_pass
from tests.monitoring_helpers import email_channel, slack_channel
from tests.partners import Reply

pytestmark = pytest.mark.django_db(transaction=True)

SLACK_PATH = "/services/T0001/B0001/slacksecretpathXYZ"


def fail_calls(connection, n: int) -> None:
    for _ in range(n):
        with pytest.raises(HubError):
            call(connection, "GET", "/contacts", max_attempts=1)


def only(*rules):
    """Switch every other rule off for the hub, so a test hears only these."""
    from monitoring.rules import RULES

    for key in RULES:
        if key not in rules:
            RuleSetting.objects.create(rule=key, enabled=False)


def test_a_failing_partner_opens_one_incident_told_once_then_resolved_once(
    api_connection, partner, smtp, receiver, caplog, secret_value
):
    # given a connection whose partner starts answering 503, an email and a Slack channel
    only("error_rate")
    api_connection.circuit_failure_threshold = 1000
    api_connection.owner = "owner@example.test"
    api_connection.save()
    email_channel()
    slack = slack_channel(receiver, SLACK_PATH)
    partner.script(Reply(503, json={"error": "down"}))
    caplog.set_level(logging.INFO)
    # when 12 calls fail and the monitoring pass runs, then runs again a few minutes later
    fail_calls(api_connection, 12)
    start = timezone.now()
    first = run_pass(start)
    again = run_pass(start + timedelta(minutes=2))
    # then one incident is open, told once per channel, not again within the cooldown
    incident = Incident.objects.get()
    assert incident.rule == "error_rate" and incident.state == "open"
    assert incident.summary.startswith("12 of the last 12 calls of Partner")
    assert incident.occurrences == 2
    assert [kind for _, kind in first.changes] == ["opened"] and again.changes == []
    assert len(smtp.messages) == 1
    recipients, mail = smtp.messages[0]
    assert sorted(recipients) == ["ops@example.test", "owner@example.test"]
    assert "12 of the last 12 calls" in str(mail["Subject"])
    body = smtp.bodies()[0]
    assert "What to do: The partner is failing on its side" in body
    assert f"/admin/monitoring/incident/{incident.pk}/change/" in body
    slack_posts = [r for r in receiver.requests if r.method == "POST"]
    assert [r.path for r in slack_posts] == [SLACK_PATH]
    assert json.loads(slack_posts[0].body)["text"].startswith("12 of the last 12 calls")
    # the Slack call went through the engine, logged without its secret path
    slack_call = ApiCall.objects.get(connection=slack.connection)
    assert slack_call.path == "/[incoming webhook]" and slack_call.status_code == 200

    # when a person acknowledges it and the partner recovers
    acknowledge(incident, None)
    partner.script(Reply(200, json=[]))
    for _ in range(5):
        call(api_connection, "GET", "/contacts")
    # a pass after the window no longer sees the failures; the incident resolves only once
    # the signal stayed away for the hysteresis time
    run_pass(start + timedelta(minutes=16))
    assert Incident.objects.get().state == "acknowledged"
    resolved = run_pass(start + timedelta(minutes=27))
    # then it is resolved, and each channel hears it once
    incident.refresh_from_db()
    assert incident.state == "resolved"
    assert [kind for _, kind in resolved.changes] == ["resolved"]
    assert smtp.subjects()[-1].startswith("[Resolved] ")
    assert len(smtp.messages) == 2
    assert len([r for r in receiver.requests if r.method == "POST"]) == 2
    assert list(
        Notification.objects.order_by("pk").values_list("channel__slug", "kind", "status")
    ) == [
        ("ops-mail", "opened", "sent"),
        ("ops-slack", "opened", "sent"),
        ("ops-mail", "resolved", "sent"),
        ("ops-slack", "resolved", "sent"),
    ]
    # and no secret anywhere: not the partner's key, not Slack's path
    everything = "\n".join(
        [
            *smtp.bodies(),
            *smtp.subjects(),
            *(r.body.decode() for r in receiver.requests),
            caplog.text,
            *Notification.objects.values_list("subject", flat=True),
            *ApiCall.objects.values_list("path", flat=True),
            json.dumps(list(Incident.objects.values()), default=str),
        ]
    )
    assert secret_value not in everything
    assert "slacksecretpathXYZ" not in everything.replace(slack_posts[0].path, "")


@pytest.mark.parametrize(
    ("every", "told"),
    [(20, ["opened"]), (32, ["opened", "resolved"])],
    ids=["returns-within-the-hysteresis", "returns-within-the-cooldown"],
)
def test_a_flapping_partner_does_not_storm(api_connection, partner, smtp, every, told):
    # given an error-rate rule and an email channel (cooldown 60 min, hysteresis 10 min)
    only("error_rate")
    api_connection.circuit_failure_threshold = 1000
    api_connection.save()
    email_channel()
    partner.script(Reply(503))
    # when the partner fails for a moment every `every` minutes, for an hour
    with time_machine.travel(timezone.now(), tick=True) as clock:
        for minute in range(0, 61, 4):
            if minute % every < 4:
                fail_calls(api_connection, 10)
            run_pass()
            clock.shift(timedelta(minutes=4))
    # then it is one incident, and the channel heard at most one opening and one resolution
    assert Incident.objects.count() == 1
    assert [s.split(" ")[0] for s in smtp.subjects()] == [
        "10" if kind == "opened" else "[Resolved]" for kind in told
    ]


def test_graded_levels_are_each_told_once_even_within_the_cooldown(api_connection, partner, smtp):
    # given the consecutive-failures rule alone, threshold 10, and an email channel
    only("consecutive_failures")
    RuleSetting.objects.create(rule="consecutive_failures", params={"threshold": 10})
    api_connection.circuit_failure_threshold = 1000
    api_connection.save()
    email_channel()
    partner.script(Reply(503))
    # when failures come one by one, a pass after each
    for _ in range(12):
        fail_calls(api_connection, 1)
        run_pass()
    # then the channel heard 50 %, 70 %, 90 % and 100 %, each once, the higher ones as worse
    assert smtp.subjects() == [
        "5 calls of Partner (Sandbox) failed in a row (50 % of the threshold of 10)",
        "[Worse] 7 calls of Partner (Sandbox) failed in a row (70 % of the threshold of 10)",
        "[Worse] 9 calls of Partner (Sandbox) failed in a row (90 % of the threshold of 10)",
        "[Worse] 10 calls of Partner (Sandbox) failed in a row (100 % of the threshold of 10)",
    ]
    assert Incident.objects.get().level == 100


def test_a_digest_channel_gets_one_message_a_day_and_none_per_incident(
    api_connection, partner, smtp
):
    from monitoring.services.notify import send_digests

    only("error_rate")
    api_connection.circuit_failure_threshold = 1000
    api_connection.save()
    email_channel(digest=True)
    partner.script(Reply(503))
    fail_calls(api_connection, 10)
    run_pass()
    assert smtp.messages == []
    assert send_digests() == 1
    (subject,) = smtp.subjects()
    assert subject == "[Digest] 1 incident(s) of the integration hub in the last day"
    assert "- [Open] 10 of the last 10 calls of Partner (Sandbox) failed" in smtp.bodies()[0]


def test_the_incident_page_acknowledges_and_retries_all_its_events_after_confirming(
    operator_client, auditor_client, make_endpoint
):
    from django.urls import reverse

    from webhooks.models import WebhookEvent

    # given an incident about two dead events of an endpoint
    endpoint = make_endpoint("github", "s", slug="shop")
    for n in range(2):
        WebhookEvent.objects.create(
            endpoint=endpoint, event_id=f"e{n}", body=b"{}", status="dead", last_error="503"
        )
    run_pass()
    incident = Incident.objects.get()
    page = operator_client.get(reverse("admin:monitoring_incident_change", args=[incident.pk]))
    html = page.content.decode()
    assert "Retry all its events" in html and "e0" in html and "e1" in html
    # an auditor reads it but cannot act
    assert auditor_client.get(page.request["PATH_INFO"]).status_code == 200
    retry = reverse("admin:monitoring_incident_retry_all", args=[incident.pk])
    assert auditor_client.post(retry).status_code == 403
    # when the operator acknowledges it
    operator_client.post(reverse("admin:monitoring_incident_acknowledge", args=[incident.pk]))
    incident.refresh_from_db()
    assert incident.state == "acknowledged"
    assert incident.acknowledged_by.username == "operators" and incident.acknowledged_at
    # and asks to retry all: a confirmation first, nothing queued yet
    confirm = operator_client.post(retry)
    assert "2 events will be queued at once" in confirm.content.decode()
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {"dead"}
    done = operator_client.post(retry, {"confirmed": "yes"}, follow=True)
    assert "2 events queued for retry." in done.content.decode()
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {"retrying"}


def test_one_outage_is_one_message_per_channel_with_every_rule_on(api_connection, partner, smtp):
    # given every rule on, and a partner that fails until the breaker opens
    email_channel()
    partner.script(Reply(503))
    for _ in range(12):
        with pytest.raises(HubError):
            call(api_connection, "GET", "/contacts", max_attempts=1)
    # when the pass runs
    run_pass()
    # then two incidents are open (the breaker after 5 failures, and the streak; the calls it
    # spared are too few for an error rate) and one message tells both, the worst speaking
    assert sorted(Incident.objects.values_list("rule", flat=True)) == [
        "circuit",
        "consecutive_failures",
    ]
    (subject,) = smtp.subjects()
    assert subject.startswith("The circuit of Partner (Sandbox) is open since")
    body = smtp.bodies()[0]
    assert "Also on this connection: 5 calls of Partner (Sandbox) failed in a row" in body
