"""For the operations team: /metrics parsed with prometheus_client's own parser (and the same
across two gunicorn workers), /health/ and /ready/ (503 naming the part that is gone), the
monitor command, the dashboard and the health column."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import requests
from django.core.management import call_command
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from connectors.choices import CredentialKind
from connectors.engine.errors import HubError
from connectors.hub import call
from connectors.services.credentials import create_credential
from monitoring.models import Incident
from monitoring.rules.hub import HEARTBEAT_KEY, beat
from monitoring.services.incidents import run_pass
from tests.monitoring_helpers import free_port, samples, slack_channel
from tests.partners import Reply
from tests.processes import ROOT, hub_process_env
from tests.syncing import nightly_python_job


@pytest.mark.django_db
def test_metrics_are_refused_without_the_token_and_parse_with_it(
    client, settings, api_connection, partner
):
    # given a token, and calls of the connection: 3 answered, 2 failed with 503
    settings.HUB_METRICS_TOKEN = "metrics-token-" + "x" * 20
    settings.HUB_METRICS_ALLOWED_IPS = []
    api_connection.circuit_failure_threshold = 1000
    api_connection.save()
    partner.script(
        Reply(200, json={}, headers={"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "40"})
    )
    for _ in range(3):
        call(api_connection, "GET", "/a")
    partner.script(Reply(503))
    for _ in range(2):
        with pytest.raises(HubError):
            call(api_connection, "GET", "/b", max_attempts=1)
    run_pass()
    # then without the token /metrics is refused, with a message that says what to send
    refused = client.get("/metrics")
    assert refused.status_code == 403
    assert "Authorization: Bearer" in refused.content.decode()
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    # and with it the exposition parses, with the calls counted by class
    response = client.get(
        "/metrics", headers={"Authorization": f"Bearer {settings.HUB_METRICS_TOKEN}"}
    )
    assert response.status_code == 200
    values = samples(response.content.decode())
    label = (("connection", "partner"), ("status_class", "2xx"))
    assert values[("hub_api_calls_total", label)] == 3
    assert (
        values[("hub_api_calls_total", (("connection", "partner"), ("status_class", "5xx")))] == 2
    )
    assert values[("hub_api_call_duration_seconds_count", (("connection", "partner"),))] == 5
    assert values[("hub_quota_remaining_ratio", (("connection", "partner"),))] == 0.4
    assert ("hub_queue_oldest_pending_seconds", ()) in values


@pytest.mark.django_db
def test_counters_do_not_go_down_when_minutes_become_final_and_are_compacted(
    client, settings, api_connection, partner
):
    settings.HUB_METRICS_ALLOWED_IPS = ["127.0.0.1"]
    partner.script(Reply(200, json={}))
    for _ in range(4):
        call(api_connection, "GET", "/a")
    label = ("hub_api_calls_total", (("connection", "partner"), ("status_class", "2xx")))
    run_pass()
    before = samples(client.get("/metrics").content.decode())[label]
    # when the minutes leave the recompute window, then the minute rows are compacted to hours
    from datetime import timedelta

    from monitoring.services.rollups import compact, roll_up

    later = timezone.now() + timedelta(days=5)
    roll_up(later)
    compact(later)
    after = samples(client.get("/metrics").content.decode())[label]
    assert before == after == 4


def test_metrics_agree_across_two_gunicorn_workers_and_ready_names_a_missing_broker(
    transactional_db, api_connection, partner
):
    # given rows in the shared database, and two gunicorn workers serving the hub
    partner.script(Reply(200, json={}))
    for _ in range(3):
        call(api_connection, "GET", "/a")
    run_pass()
    beat()
    port = free_port()
    env = hub_process_env(HUB_METRICS_ALLOWED_IPS="127.0.0.1", LOG_LEVEL="ERROR")
    server = _gunicorn(port, env)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait(url + "/health/")
        # when Prometheus scrapes it several times (the workers take turns)
        scrapes = [samples(requests.get(url + "/metrics", timeout=10).text) for _ in range(6)]
        # then every scrape says the same
        label = ("hub_api_calls_total", (("connection", "partner"), ("status_class", "2xx")))
        assert [s[label] for s in scrapes] == [3.0] * 6
    finally:
        _stop(server)
    # and a hub whose broker is gone is not ready, and says which part
    dead = free_port()
    env = hub_process_env(
        REDIS_URL=f"redis://127.0.0.1:{dead}/0",
        LOG_LEVEL="CRITICAL",
    )
    server = _gunicorn(port, env, workers=1)
    try:
        _wait(url + "/health/")
        ready = requests.get(url + "/ready/?format=json", timeout=30)
        assert ready.status_code == 503
        body = ready.json()
        failing = {name for name, verdict in body.items() if verdict != "OK"}
        assert any(name.startswith("Broker") for name in failing), body
        assert any(name.startswith("Cache") for name in failing), body
        assert requests.get(url + "/health/", timeout=10).status_code == 200
    finally:
        _stop(server)


def _gunicorn(port: int, env: dict, workers: int = 2) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "integrations_site.wsgi",
            "-w",
            str(workers),
            "-b",
            f"127.0.0.1:{port}",
            "--timeout",
            "60",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _wait(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        # not listening yet, or a worker still starting on a busy machine (a read timeout)
        except (requests.ConnectionError, requests.Timeout):
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer in {seconds} s")


def _stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@pytest.mark.django_db(transaction=True)
def test_ready_answers_503_without_a_worker_heartbeat_and_200_with_one(client):
    from django.core.cache import cache

    cache.delete(HEARTBEAT_KEY)
    response = client.get("/ready/?format=json")
    assert response.status_code == 503
    assert "No worker heartbeat yet: no worker cluster runs" in json.dumps(response.json())
    beat()
    response = client.get("/ready/?format=json")
    assert response.status_code == 200, response.json()
    assert client.get("/health/").status_code == 200


@pytest.mark.django_db
def test_monitor_status_and_test_channel(capsys, receiver, make_endpoint):
    from webhooks.models import WebhookEvent

    endpoint = make_endpoint("github", "s", slug="shop")
    WebhookEvent.objects.create(endpoint=endpoint, event_id="e1", body=b"{}", status="failed")
    run_pass()
    call_command("monitor", "status")
    out = capsys.readouterr().out
    assert "Open incidents: 1" in out
    assert "1 event(s) of endpoint shop wait for a person" in out
    assert "shop-conn" in out and "Degraded" in out
    slack_channel(receiver, "/services/T/B/cmdsecret")
    call_command("monitor", "test-channel", "ops-slack")
    assert "ops-slack: test sent." in capsys.readouterr().out
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match=r'no channel "nope" \(known: ops-slack\)'):
        call_command("monitor", "test-channel", "nope")


@pytest.mark.django_db
def test_the_home_page_is_a_dashboard_with_health_incidents_and_the_calendar(
    operator_client, make_endpoint, connection, secret_value
):
    from datetime import timedelta

    from webhooks.models import WebhookEvent

    endpoint = make_endpoint("github", "s", slug="shop")
    WebhookEvent.objects.create(endpoint=endpoint, event_id="e1", body=b"{}", status="dead")
    create_credential(
        connection,
        CredentialKind.API_KEY,
        secret_value,
        label="main",
        expires_at=timezone.now() + timedelta(days=5),
    )
    run_pass()
    page = operator_client.get(reverse("admin:index")).content.decode()
    assert "Open incidents" in page
    assert "1 event(s) of endpoint shop wait for a person" in page
    assert "API key &#x27;main&#x27; expires in 4 d" in page
    assert 'data-chart="calls-24h"' in page and "chart.umd.min.js" in page
    endpoint_row = page.split("/webhooks/shop/</a>")[1].split("</tr>")[0]
    assert ">Degraded</strong>" in endpoint_row
    assert secret_value not in page
    # the connection list shows each connection's health in colour, at a fixed query count
    listing = operator_client.get(reverse("admin:connectors_connection_changelist"))
    html = listing.content.decode()
    assert ">Degraded</strong>" in html
    assert Incident.objects.filter(connection=endpoint.connection).exists()


@pytest.mark.django_db
def test_the_connection_list_and_dashboard_make_a_fixed_number_of_queries(
    operator_client, make_endpoint
):
    from connectors.models import Connection

    def queries(url):
        with CaptureQueriesContext(db_connection) as ctx:
            assert operator_client.get(url).status_code == 200
        return len(ctx)

    Connection.objects.create(name="c0", slug="c0", base_url="https://c0.test")
    make_endpoint("github", None, slug="e0")
    run_pass()
    one = (
        queries(reverse("admin:connectors_connection_changelist")),
        queries(reverse("admin:index")),
    )
    for i in range(1, 30):
        Connection.objects.create(name=f"c{i}", slug=f"c{i}", base_url=f"https://c{i}.test")
        make_endpoint("github", None, slug=f"e{i}")
    run_pass()
    many = (
        queries(reverse("admin:connectors_connection_changelist")),
        queries(reverse("admin:index")),
    )
    assert one == many


def test_a_cluster_that_runs_without_its_schedules_is_named(transactional_db):
    from django.core.cache import cache
    from django_q.models import Schedule

    from monitoring.rules.hub import workers_problem
    from tests.processes import purge_queue, start, stop, wait_for

    # given the heartbeat's schedule (migrate makes it), and a last beat 16 minutes old
    assert Schedule.objects.filter(func="monitoring.tasks.heartbeat", minutes=1).exists()
    cache.set(HEARTBEAT_KEY, time.time() - 1000, timeout=600)
    assert workers_problem(180)[0] == "heartbeat"
    # when a real worker cluster runs, but its scheduler has not run the heartbeat
    purge_queue()
    Schedule.objects.all().delete()
    cluster = start(["qcluster"], hub_process_env(Q_WORKERS="1"))
    try:
        # then the problem is named as the scheduler's, not the workers'
        wait_for(lambda: workers_problem(180)[0] == "scheduler", 30, "the cluster to show")
        assert workers_problem(180)[1].startswith(
            "1 worker cluster(s) run, but no scheduled task ran for 16 min"
        )
    finally:
        stop(cluster)
    # and once it stopped, no cluster runs at all
    wait_for(lambda: workers_problem(180)[0] == "heartbeat", 30, "the cluster's stats to expire")
    # a beat makes it well again
    beat()
    assert workers_problem(180) is None


def test_collectstatic_accepts_the_vendored_charts_as_production_does(settings, tmp_path):
    # the production storage refuses a file that references a missing one (a source map)
    settings.STATIC_ROOT = tmp_path
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }
    call_command("collectstatic", interactive=False, verbosity=0)
    manifest = json.loads((tmp_path / "staticfiles.json").read_text())["paths"]
    assert "monitoring/vendor/chart.js/chart.umd.min.js" in manifest
    assert "monitoring/charts.js" in manifest
    assert "governance/vendor/mermaid/mermaid.min.js" in manifest


@pytest.mark.django_db
def test_a_late_sync_shows_on_the_dashboard_with_its_health(operator_client):
    from datetime import timedelta

    nightly_python_job("Nightly contacts", age=timedelta(days=3))
    run_pass()
    page = operator_client.get(reverse("admin:index")).content.decode()
    line = page.split("Nightly contacts</a>")[1].split("</li>")[0]
    assert ">error</strong>" in line and ">Failing</strong>" in line
    assert "Sync nightly is error: no successful run since" in line
