"""Notification channels against real receivers: the signed webhook verified with the
Standard Webhooks library, Teams' card, Send test from the console, and a broken channel that
becomes an incident told by the others while they keep sending."""

from __future__ import annotations

import json
import secrets

import pytest
from django.urls import reverse
from standardwebhooks import Webhook

from connectors.choices import CredentialKind
from connectors.models import ApiCall, Connection
from connectors.services.credentials import create_credential
from monitoring.models import Channel, Incident, Notification
from monitoring.services.incidents import run_pass
from tests.monitoring_helpers import email_channel, slack_channel
from tests.partners import Reply
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db


def receiver_connection(receiver, slug: str) -> Connection:
    return Connection.objects.create(
        name=slug,
        slug=slug,
        base_url=receiver.url,
        auth_method="none",
        connect_timeout=1,
        read_timeout=2,
    )


def waiting_event(make_endpoint, slug="shop-in"):
    endpoint = make_endpoint("github", "s", slug=slug)
    WebhookEvent.objects.create(
        endpoint=endpoint,
        event_id="evt_1",
        event_type="order.paid",
        body=b'{"email": "ada@example.test"}',
        status="dead",
        last_error="partner refused: 422",
    )
    return endpoint


def test_the_signed_webhook_verifies_with_the_standard_webhooks_library(receiver, make_endpoint):
    # given a signed-webhook channel to the site's own receiver
    key = "whsec_" + __import__("base64").b64encode(secrets.token_bytes(24)).decode()
    connection = receiver_connection(receiver, "site-alerts")
    create_credential(connection, CredentialKind.WEBHOOK_SIGNING_SECRET, key)
    Channel.objects.create(
        slug="site", name="Site", kind="webhook", connection=connection, path="/hub-alerts"
    )
    waiting_event(make_endpoint)
    # when an incident opens
    run_pass()
    # then the receiver got one delivery whose signature the reference library accepts
    (request,) = [r for r in receiver.requests if r.method == "POST"]
    assert request.path == "/hub-alerts"
    payload = Webhook(key).verify(request.body, {k.lower(): v for k, v in request.headers.items()})
    assert payload["type"] == "hub.incident.opened"
    assert payload["data"]["rule"] == "events_waiting"
    assert payload["subject"].startswith("1 event(s) of endpoint shop-in wait for a person")
    # and no personal data of the event's payload left the hub
    assert b"ada@example.test" not in request.body
    assert key.encode() not in request.body


def test_teams_gets_an_adaptive_card(receiver, make_endpoint):
    connection = receiver_connection(receiver, "teams")
    create_credential(connection, CredentialKind.OTHER, "/workflows/abc/triggers/secret-sig")
    Channel.objects.create(slug="teams", name="Teams", kind="teams", connection=connection)
    waiting_event(make_endpoint)
    run_pass()
    (request,) = [r for r in receiver.requests if r.method == "POST"]
    card = json.loads(request.body)["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["content"]["body"][0]["text"].startswith("1 event(s) of endpoint shop-in")
    assert card["content"]["actions"][0]["url"].endswith(
        f"/admin/monitoring/incident/{Incident.objects.get().pk}/change/"
    )
    assert ApiCall.objects.get(connection=connection).path == "/[incoming webhook]"


def test_send_test_from_the_console(integration_admin_client, receiver):
    channel = slack_channel(receiver, "/services/T/B/testsecretpath")
    response = integration_admin_client.post(
        reverse("admin:monitoring_channel_send_test", args=[channel.pk]), follow=True
    )
    assert "Ops on Slack: test sent." in response.content.decode()
    (request,) = receiver.requests
    assert json.loads(request.body)["text"].startswith("[Test] The integration hub can reach")
    assert Notification.objects.get().kind == "test"
    # the channel's page never shows the secret path
    page = integration_admin_client.get(
        reverse("admin:monitoring_channel_change", args=[channel.pk])
    ).content.decode()
    assert "testsecretpath" not in page


def test_a_broken_channel_is_an_incident_told_by_the_others(receiver, smtp, make_endpoint):
    # given a Slack channel whose receiver answers 404 (the webhook was deleted) and an email
    receiver.script(Reply(404, body=b"no_service"))
    broken = slack_channel(receiver, "/services/T/B/deleted")
    email_channel()
    waiting_event(make_endpoint)
    # when an incident opens
    run_pass()
    # then the email still went out, and the Slack failure is recorded on the channel
    assert len(smtp.messages) == 1
    broken.refresh_from_db()
    assert broken.consecutive_failures == 1
    assert "404" in broken.last_error
    assert Notification.objects.get(channel=broken).status == "failed"
    # and the next pass opens an incident about the channel, told by email only
    run_pass()
    channel_incident = Incident.objects.get(rule="channel")
    assert channel_incident.summary.startswith("Notification channel Ops on Slack fails")
    assert len(smtp.messages) == 2
    assert smtp.subjects()[1].startswith("Notification channel Ops on Slack fails")
    assert "deleted" not in smtp.bodies()[1]
    # Slack was not asked to carry news of its own failure
    slack_subjects = [json.loads(r.body)["text"] for r in receiver.requests]
    assert not any("Ops on Slack fails" in s for s in slack_subjects)


def test_routing_by_rule_connection_and_severity(receiver, smtp, make_endpoint):
    from monitoring.services.notify import routed_channels

    endpoint = waiting_event(make_endpoint)
    other = Connection.objects.create(name="Other", slug="other", base_url="https://o.test")
    by_rule = email_channel(rules=["backlog"])
    by_connection = Channel.objects.create(slug="c", name="C", kind="email", recipients="c@x.test")
    by_connection.connections.add(other)
    critical_only = Channel.objects.create(
        slug="k", name="K", kind="email", recipients="k@x.test", min_severity="critical"
    )
    matching = Channel.objects.create(slug="m", name="M", kind="email", recipients="m@x.test")
    matching.connections.add(endpoint.connection)
    run_pass()
    incident = Incident.objects.get()
    assert incident.severity == "warning"
    channels = [by_rule, by_connection, critical_only, matching]
    assert routed_channels(incident, channels) == [matching]
    assert [recipients for recipients, _ in smtp.messages] == [["m@x.test"]]


def test_no_personal_data_or_secret_reaches_any_message(
    receiver, smtp, api_connection, partner, make_endpoint, secret_value
):
    # given a partner that refuses creates and echoes the customer's address in its answer,
    # and events that failed with that answer as their last error
    from connectors.engine.errors import HubError
    from connectors.hub import call

    pii = "ada.lovelace@example.test"
    partner.script(Reply(422, json={"error": f"contact {pii} is invalid"}))
    api_connection.circuit_failure_threshold = 1000
    api_connection.save()
    for _ in range(10):
        with pytest.raises(HubError):
            call(api_connection, "POST", "/contacts", json={"email": pii}, max_attempts=1)
    endpoint = make_endpoint("github", "s", slug="shop-pii")
    WebhookEvent.objects.create(
        endpoint=endpoint,
        event_id="evt_pii",
        body=b'{"email": "%s"}' % pii.encode(),
        status="failed",
        last_error=f"partner refused: contact {pii} is invalid",
    )
    assert ApiCall.objects.filter(error_message__contains=pii).exists()  # the log has it
    email_channel()
    slack_channel(receiver, "/services/T/B/piisecret")
    # when the incidents open and are told
    run_pass()
    # then the outage (its error rate speaking for its failure streak) and the failed event
    # were told, and no message carries the address or a secret
    assert len(smtp.messages) == 2 and len(receiver.requests) == 2
    assert "Also on this connection: 10 of the last 10 calls" in smtp.bodies()[0]
    sent = [*smtp.bodies(), *smtp.subjects(), *(r.body.decode() for r in receiver.requests)]
    assert sent and not any(pii in text or secret_value in text for text in sent)
    assert not any("piisecret" in text for text in sent)


def test_a_channel_is_validated_with_messages_that_name_the_fix():
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match=r"unknown rule\(s\) errors \(known: backlog"):
        Channel(slug="a", name="A", kind="email", rules=["errors"]).full_clean()
    with pytest.raises(ValidationError, match="send through a connection"):
        Channel(slug="b", name="B", kind="slack").full_clean()


def test_a_channel_that_raises_unexpectedly_is_recorded_and_others_still_send(
    receiver, smtp, make_endpoint, monkeypatch
):
    from monitoring.channels import CHANNELS

    # given a Slack channel whose sending code raises (a bug), and an email channel
    slack_channel(receiver, "/services/T/B/x")
    email_channel()
    monkeypatch.setattr(CHANNELS.lookup("slack"), "send", lambda *a: 1 / 0)
    waiting_event(make_endpoint)
    run_pass()
    # then the email went, and the Slack failure says what happened, not a traceback
    assert len(smtp.messages) == 1
    failed = Notification.objects.get(channel__slug="ops-slack")
    assert failed.status == "failed"
    assert failed.error == "the channel failed unexpectedly (ZeroDivisionError)"
