"""The engine in the console and in the background: Test connection, the call log, purges,
and the rate limit shared between concurrent callers."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection as db_connection
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule

from connectors import hub
from connectors.models import ApiCall, IdempotencyRecord
from connectors.tasks import purge_api_calls, purge_idempotency_records
from tests.partners import Reply

pytestmark = pytest.mark.django_db(transaction=True)


def run_test_action(client, connection):
    return client.post(
        reverse("admin:connectors_connection_changelist"),
        {"action": "test_connections", "_selected_action": [connection.pk]},
        follow=True,
    ).content.decode()


def test_test_connection_reports_status_latency_and_meaning(
    integration_admin_client, api_connection, partner, secret_value
):
    partner.script(Reply(200, json={"user": "hub"}))
    html = run_test_action(integration_admin_client, api_connection)
    assert "Partner: 200," in html and " ms: the partner answered and accepted" in html
    assert partner.requests[0].path == "/v1/me"
    partner.script(Reply(401, json={"error": "bad key"}))
    html = run_test_action(integration_admin_client, api_connection)
    assert "401" in html and "wrong, expired or revoked" in html
    partner.script(Reply(403))
    assert "lacks a scope" in run_test_action(integration_admin_client, api_connection)
    assert secret_value not in html


def test_test_connection_explains_timeouts_and_refusals(
    integration_admin_client, api_connection, partner
):
    api_connection.read_timeout = 0.2
    api_connection.save()
    partner.script(Reply(200, delay=1.0))
    assert "timeout: the partner did not answer in time" in run_test_action(
        integration_admin_client, api_connection
    )
    api_connection.base_url = "http://127.0.0.1:9/v1"  # discard port: nothing listens
    api_connection.save()
    assert "cannot connect (DNS or refused)" in run_test_action(
        integration_admin_client, api_connection
    )


def test_operators_read_the_call_log_but_cannot_change_it(
    operator_client, api_connection, partner, secret_value
):
    with hub.correlation_scope("corr-for-search"):
        hub.call("partner", "GET", "/contacts-ok")
    partner.script(Reply(500))
    api_connection.retry_max_attempts = 1
    api_connection.save()
    with pytest.raises(hub.RetryableError):
        hub.call("partner", "GET", "/broken-endpoint")
    changelist = reverse("admin:connectors_apicall_changelist")
    page = operator_client.get(changelist, {"q": "corr-for-search"}).content.decode()
    assert "/contacts-ok" in page and "/broken-endpoint" not in page
    page = operator_client.get(changelist, {"status_class": "5"}).content.decode()
    assert "/broken-endpoint" in page and "/contacts-ok" not in page
    row = ApiCall.objects.first()
    detail = operator_client.get(reverse("admin:connectors_apicall_change", args=[row.pk]))
    assert detail.status_code == 200 and secret_value not in detail.content.decode()
    assert (
        operator_client.post(
            reverse("admin:connectors_apicall_delete", args=[row.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    assert ApiCall.objects.count() == 2


def test_the_connection_page_shows_circuit_quota_and_deprecation(
    integration_admin_client, api_connection, partner
):
    partner.script(
        Reply(
            200,
            json={},
            headers={"X-RateLimit-Remaining": "17", "Sunset": "Wed, 30 Jun 2027 23:59:59 GMT"},
        )
    )
    hub.call("partner", "GET", "/x")
    page = integration_admin_client.get(
        reverse("admin:connectors_connection_change", args=[api_connection.pk])
    ).content.decode()
    assert "17 left at" in page
    assert "Sunset: Wed, 30 Jun 2027 23:59:59 GMT" in page
    assert "closed" in page


def test_purges_follow_retention_and_expiry(api_connection, partner):
    hub.call("partner", "GET", "/recent")
    hub.call("partner", "GET", "/old")
    old = ApiCall.objects.get(path="/old")
    ApiCall.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(days=api_connection.retention_days + 1)
    )
    assert purge_api_calls() == 1
    assert list(ApiCall.objects.values_list("path", flat=True)) == ["/recent"]
    hub.call("partner", "POST", "/a", json={}, idempotency_key="fresh")
    hub.call("partner", "POST", "/b", json={}, idempotency_key="stale")
    IdempotencyRecord.objects.filter(key="stale").update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert purge_idempotency_records() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["fresh"]


def test_purge_schedules_exist_after_migrate():
    funcs = set(Schedule.objects.values_list("func", flat=True))
    assert {
        "connectors.tasks.purge_api_calls",
        "connectors.tasks.purge_idempotency_records",
    } <= funcs


def test_the_rate_limit_holds_across_concurrent_callers(api_connection, partner):
    # given a limit of 5 per minute and 12 callers at once
    api_connection.rate_limit_requests = 5
    api_connection.rate_limit_window_seconds = 60
    api_connection.save()
    outcomes: list[str] = []
    lock = threading.Lock()

    def caller():
        try:
            hub.call("partner", "GET", "/burst")
            result = "ok"
        except hub.QuotaExceededError:
            result = "quota"
        finally:
            db_connection.close()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=caller) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # then exactly five reached the partner, whatever the interleaving
    assert sorted(outcomes) == ["ok"] * 5 + ["quota"] * 7
    assert len(partner.requests) == 5
