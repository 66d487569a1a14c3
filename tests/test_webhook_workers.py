"""Real worker processes: a delivery is processed by a qcluster, and a worker killed with
SIGKILL in the middle of processing loses nothing and applies nothing twice."""

from __future__ import annotations

import os
import secrets as pysecrets
import signal
from pathlib import Path

import pytest
from django.db import connection as db_connection

from tests import signing
from tests.processes import (
    hub_process_env,
    purge_queue,
    restart_until_processed,
    start,
    stop,
    wait_for,
)
from webhooks.models import WebhookEvent

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.django_db(transaction=True)


def worker_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a worker that uses the test database and the same broker."""
    return hub_process_env(
        HUB_HANDLER_MODULES="tests.webhook_handlers",
        HUB_TEST_MARKER_DIR=str(tmp_path),
        Q_WORKERS="1",
        **extra,
    )


@pytest.fixture
def worker_endpoint(make_endpoint, api_connection):
    secret = pysecrets.token_hex(20)
    return make_endpoint("github", secret, slug="gh-worker"), secret


def deliver(client, endpoint, secret, delivery_id: str) -> WebhookEvent:
    body = signing.fixture("github", "push")
    response = client.post(
        f"/webhooks/{endpoint.slug}/",
        data=body,
        content_type="application/json",
        headers=signing.github_headers(body, secret, delivery_id),
    )
    assert response.status_code == 202
    return WebhookEvent.objects.get(pk=response.json()["event"])


def test_a_real_cluster_processes_a_delivery(client, worker_endpoint, partner, tmp_path):
    endpoint, secret = worker_endpoint
    purge_queue()
    cluster = start(["qcluster"], worker_env(tmp_path))
    try:
        event = deliver(client, endpoint, secret, "real-1")
        db_connection.close()
        wait_for(
            lambda: WebhookEvent.objects.get(pk=event.pk).status == "processed",
            60,
            "the cluster to process the event",
        )
    finally:
        stop(cluster)
    assert len(partner.requests) == 1
    assert partner.requests[0].headers["Idempotency-Key"] == f"webhook-event-{event.pk}"


def test_a_worker_killed_mid_processing_loses_nothing_and_applies_once(
    client, worker_endpoint, partner, tmp_path
):
    endpoint, secret = worker_endpoint
    purge_queue()
    # given a cluster whose handler stalls on its first attempt, with a short lease
    env = worker_env(tmp_path, HUB_TEST_SLOW_FIRST_ATTEMPT="1", HUB_WEBHOOK_LEASE_SECONDS="3")
    cluster = start(["qcluster"], env)
    try:
        event = deliver(client, endpoint, secret, "killed-1")
        wait_for(
            lambda: (tmp_path / f"started-{event.pk}-1").exists(), 60, "the first attempt to start"
        )
        # when the whole cluster is killed while the handler runs
        os.killpg(cluster.pid, signal.SIGKILL)
        cluster.wait(timeout=30)
    finally:
        stop(cluster)
    db_connection.close()
    assert WebhookEvent.objects.get(pk=event.pk).status == "processing"
    # then after a restart (cluster and sweeper), the event is taken back and processed once
    env.pop("HUB_TEST_SLOW_FIRST_ATTEMPT")
    restart_until_processed(env, event.pk)
    event.refresh_from_db()
    outcomes = list(event.attempt_log.values_list("outcome", flat=True))
    assert outcomes == ["lost", "processed"]
    assert len(partner.requests) == 1
