"""Each rule against real rows: graded failures, the expiry calendar under a controlled clock,
quota from real rate-limit headers, silence against a synthetic history, refusals, freshness."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from connectors.choices import CredentialKind
from connectors.engine.errors import HubError
from connectors.hub import call
from connectors.services.credentials import create_credential
from monitoring.models import EventRollup, Incident, RuleSetting
from monitoring.rules import RULES
from monitoring.services.context import Context
from monitoring.services.incidents import evaluate, run_pass
from monitoring.services.rollups import roll_up
from tests.partners import Reply
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db


def signals_of(rule: str, now=None):
    now = now or timezone.now()
    roll_up(now)
    return RULES.lookup(rule).evaluate(Context(now))


def test_consecutive_failures_are_graded_and_each_level_is_told_once(api_connection, partner):
    # given a threshold of 10 failures in a row
    RuleSetting.objects.create(rule="consecutive_failures", params={"threshold": 10})
    api_connection.circuit_failure_threshold = 1000
    api_connection.save()
    partner.script(Reply(503))
    levels = []
    # when failures accumulate, 1 to 10 in a row
    for _ in range(10):
        with pytest.raises(HubError):
            call(api_connection, "GET", "/x", max_attempts=1)
        found = signals_of("consecutive_failures")
        levels.append(found[0].level if found else 0)
    # then the levels are 50, 70, 90 and 100 % of the threshold, the last one critical
    assert levels == [0, 0, 0, 0, 50, 50, 70, 70, 90, 100]
    assert found[0].severity == "critical"
    assert found[0].summary.startswith("10 calls of Partner (Sandbox) failed in a row")
    # and a success ends the streak
    partner.script(Reply(200, json={}))
    call(api_connection, "GET", "/x")
    assert signals_of("consecutive_failures") == []


def test_unknown_rule_parameters_are_refused_with_the_known_ones():
    from django.core.exceptions import ValidationError

    setting = RuleSetting(rule="error_rate", params={"percentage": 30})
    with pytest.raises(ValidationError) as error:
        setting.full_clean()
    assert "unknown parameter(s) percentage (known: critical_percent, min_count, percent" in str(
        error.value
    )
    with pytest.raises(ValidationError, match=r'unknown monitoring rule "nope" \(known: backlog'):
        RuleSetting(rule="nope").full_clean()


@pytest.mark.parametrize(
    ("days_left", "level", "severity"),
    [(40, None, None), (29, 1, "warning"), (6, 2, "warning"), (0.5, 3, "critical")],
)
def test_a_credential_expiring_is_warned_30_7_and_1_day_before(
    connection, secret_value, days_left, level, severity
):
    # given a key that expires on a fixed date
    expires = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
    create_credential(
        connection, CredentialKind.API_KEY, secret_value, label="main", expires_at=expires
    )
    # when the calendar is read `days_left` days before
    with time_machine.travel(expires - timedelta(days=days_left), tick=False):
        found = signals_of("expiry")
    # then the level grows as the date nears
    if level is None:
        assert found == []
        return
    assert [(s.level, s.severity) for s in found] == [(level, severity)]
    assert "API key 'main' of Sandbox CRM (Sandbox) expires in" in found[0].summary
    assert secret_value not in found[0].summary + found[0].advice


def test_an_expired_token_and_a_reauthorisation_alert_at_once(connection, secret_value):
    expires = datetime(2027, 3, 1, tzinfo=UTC)
    create_credential(connection, CredentialKind.API_KEY, secret_value, expires_at=expires)
    connection.status = "reauth_required"
    connection.status_reason = "the partner refused the refresh token (invalid_grant)"
    connection.save()
    with time_machine.travel(expires + timedelta(hours=1), tick=False):
        found = sorted(signals_of("expiry"), key=lambda s: s.error_class)
    assert [(s.error_class, s.severity, s.level) for s in found] == [
        (found[0].error_class, "critical", 100),
        ("reauth_required", "critical", 100),
    ]
    assert found[0].summary.startswith("The API key")
    assert "expired at 2027-03-01" in found[0].summary
    assert "invalid_grant" in found[1].summary


def test_a_sunset_date_announced_by_the_partner_is_on_the_calendar(connection):
    connection.sunset_date = "Sat, 01 May 2027 00:00:00 GMT"
    connection.save()
    with time_machine.travel(datetime(2027, 4, 25, tzinfo=UTC), tick=False):
        found = signals_of("expiry")
    assert [(s.error_class, s.level) for s in found] == [("sunset", 2)]
    assert "the partner's API version of Sandbox CRM" in found[0].summary


def test_quota_is_read_from_the_partners_rate_limit_headers(api_connection, partner):
    # given a partner that reports its quota (GitHub-style headers, then the IETF fields)
    partner.script(
        Reply(200, json={}, headers={"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "30"}),
        Reply(
            200,
            json={},
            headers={"RateLimit-Policy": '"default";q=100;w=60', "RateLimit": '"default";r=8;t=40'},
        ),
    )
    # when the hub calls it
    call(api_connection, "GET", "/a")
    first = signals_of("quota")
    call(api_connection, "GET", "/b")
    second = signals_of("quota")
    # then 70 % used is fine, 92 % is critical
    assert first == []
    assert [(s.error_class, s.level, s.severity) for s in second] == [("used", 90, "critical")]
    assert (
        "92 % of the partner's quota for Partner (Sandbox) is used (8 of 100" in second[0].summary
    )


def test_a_burst_of_429_is_a_quota_signal(api_connection, partner):
    partner.script(Reply(429, headers={"Retry-After": "0"}))
    for _ in range(3):
        with pytest.raises(HubError):
            call(api_connection, "GET", "/a", max_attempts=1)
    found = signals_of("quota")
    assert [(s.error_class, s.details["rate_limited"]) for s in found] == [("429", 3)]


def _history(endpoint, now, per_hour, weeks=3, quiet_hours=()):
    """Hourly rollups: `per_hour` events each hour for `weeks` weeks, none in quiet hours."""
    rows = []
    start = (now - timedelta(weeks=weeks)).replace(minute=0, second=0, microsecond=0)
    hour = start
    while hour < now - timedelta(hours=6):
        if hour.hour not in quiet_hours:
            rows.append(
                EventRollup(endpoint=endpoint, start=hour, resolution=3600, received=per_hour)
            )
        hour += timedelta(hours=1)
    EventRollup.objects.bulk_create(rows)


def test_a_silent_endpoint_is_noticed_but_not_on_a_usual_quiet_hour(make_endpoint):
    # given an endpoint that receives 3 events an hour in the day and none from 0 to 6 h,
    # with three weeks of history
    endpoint = make_endpoint("github", "s", slug="busy")
    afternoon = datetime(2027, 3, 10, 15, 0, tzinfo=UTC)
    _history(endpoint, afternoon, per_hour=3, quiet_hours=range(0, 7))
    WebhookEvent.objects.create(
        endpoint=endpoint, event_id="last", body=b"{}", received_at=afternoon - timedelta(hours=6)
    )
    # when nothing came for 6 hours in the afternoon
    with time_machine.travel(afternoon, tick=False):
        found = signals_of("silence")
    # then it is a silence, said in words
    assert len(found) == 1
    assert found[0].summary.startswith(
        "No event received on endpoint busy for 6 h, usually every 20 min at this hour"
    )
    # and at 5 in the morning, after the usual quiet night, it is not
    night = datetime(2027, 3, 10, 5, 30, tzinfo=UTC)
    WebhookEvent.objects.filter(event_id="last").update(received_at=night - timedelta(hours=6))
    with time_machine.travel(night, tick=False):
        assert signals_of("silence") == []


def test_silence_needs_a_minimum_history(make_endpoint):
    endpoint = make_endpoint("github", "s", slug="young")
    now = datetime(2027, 3, 10, 15, 0, tzinfo=UTC)
    _history(endpoint, now, per_hour=10, weeks=1)
    WebhookEvent.objects.create(
        endpoint=endpoint, event_id="e", body=b"{}", received_at=now - timedelta(hours=6)
    )
    with time_machine.travel(now, tick=False):
        assert signals_of("silence") == []


def test_a_refusal_spike_is_a_signature_incident(client, make_endpoint, settings):
    # given a signed endpoint, and a sender that signs with the wrong secret
    endpoint = make_endpoint("github", "right-secret", slug="gh-probed")
    roll_up()  # the first pass learns the counter
    from tests import signing
    from webhooks.services.refusals import counter

    for i in range(12):
        body = b'{"n": %d}' % i
        response = client.post(
            f"/webhooks/{endpoint.slug}/",
            data=body,
            content_type="application/json",
            headers=signing.github_headers(body, "wrong-secret", f"d{i}"),
        )
        assert response.status_code == 401
    counter.flush()
    # when the pass runs
    found = signals_of("signature_failures")
    # then the refusals are an incident that says what to check
    assert len(found) == 1
    assert found[0].summary.startswith("12 deliveries to endpoint gh-probed were refused in 15 min")
    assert "rotated its signing secret" in found[0].advice
    # and /metrics counts them by kind
    from tests.monitoring_helpers import samples

    settings.HUB_METRICS_ALLOWED_IPS = ["127.0.0.1"]
    exposition = samples(client.get("/metrics").content.decode())
    label = (("endpoint", "gh-probed"), ("reason", "signature"))
    assert exposition[("hub_webhook_refusals_total", label)] == 12


def test_sync_freshness_on_time_delayed_error():
    from monitoring.rules.sync_freshness import DELAYED, ERROR, ON_TIME, freshness
    from syncs.models import SyncRun
    from tests.syncing import nightly_python_job

    now = datetime(2027, 3, 10, 12, 0, tzinfo=UTC)
    job = nightly_python_job("Nightly", age=timedelta(days=10), now=now)
    run = SyncRun.objects.create(
        job=job, mode="incremental", status="succeeded", finished_at=now - timedelta(hours=10)
    )
    assert [state for _, state, _, _ in freshness([job], now)] == [ON_TIME]
    SyncRun.objects.filter(pk=run.pk).update(finished_at=now - timedelta(hours=30))
    assert [state for _, state, _, _ in freshness([job], now)] == [DELAYED]
    SyncRun.objects.filter(pk=run.pk).update(finished_at=now - timedelta(hours=50))
    assert [state for _, state, _, _ in freshness([job], now)] == [ERROR]
    with time_machine.travel(now, tick=False):
        found = signals_of("sync_freshness")
    assert [(s.severity, s.level) for s in found] == [("critical", 2)]
    assert found[0].summary.startswith("Sync nightly is error: no successful run since")


def test_a_rule_that_raises_leaves_its_incidents_as_they_are(api_connection, partner, monkeypatch):
    # given an open incident of the error-rate rule
    api_connection.circuit_failure_threshold = 1000
    api_connection.save()
    partner.script(Reply(503))
    for _ in range(10):
        with pytest.raises(HubError):
            call(api_connection, "GET", "/x", max_attempts=1)
    run_pass()
    assert Incident.objects.filter(rule="error_rate", state="open").count() == 1
    # when the rule raises on later passes (long after the failures)
    rule = RULES.lookup("error_rate")

    def broken(ctx):
        raise RuntimeError("bug")

    monkeypatch.setattr(rule, "evaluate", broken)
    later = timezone.now() + timedelta(hours=2)
    report = run_pass(later)
    run_pass(later + timedelta(minutes=30))
    # then its incident is neither cleared nor resolved, and the pass says which rule failed
    assert report.failed_rules == ["error_rate"]
    incident = Incident.objects.get(rule="error_rate")
    assert incident.state == "open" and incident.clear_since is None
    assert evaluate(later, only=["backlog"])[1] == {"backlog"}


def test_minutes_fold_into_hours_and_old_hours_are_purged(connection, settings):
    from monitoring.models import HOUR, CallRollup
    from monitoring.services.rollups import compact

    now = datetime(2027, 3, 10, 12, 0, tzinfo=UTC)
    old = now - timedelta(days=4)
    # given final minute rows of one hour four days ago, and an hour row past the retention
    CallRollup.objects.bulk_create(
        CallRollup(
            connection=connection,
            start=old.replace(minute=m),
            calls=2,
            ok=1,
            server_errors=1,
            duration_ms_sum=100,
            latency=[1, 1, 0, 0, 0, 0, 0, 0, 0, 0],
            final=True,
        )
        for m in range(60)
    )
    CallRollup.objects.create(
        connection=connection, start=now - timedelta(days=500), resolution=HOUR, calls=9, final=True
    )
    compact(now)
    # then one hour row holds their sums, and the old one is gone
    (row,) = CallRollup.objects.all()
    assert (row.resolution, row.start, row.calls, row.ok, row.server_errors) == (
        HOUR,
        old.replace(minute=0),
        120,
        60,
        60,
    )
    assert row.latency == [60, 60, 0, 0, 0, 0, 0, 0, 0, 0] and row.duration_ms_sum == 6000
