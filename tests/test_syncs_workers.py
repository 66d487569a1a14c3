"""Sync runs on real workers: a qcluster killed with SIGKILL in the middle of a run, and a run
paused by a long Retry-After that a real cluster's scheduler continues."""

from __future__ import annotations

import os
import signal
from datetime import timedelta

import pytest
from django.db import connection as db_connection
from django.utils import timezone

from connectors.engine.config_cache import bump_generation
from connectors.models import Connection
from sandbox.models import SandboxContact, SandboxState
from syncs.models import MirrorRecord, SyncRun
from syncs.services.runner import run_job
from tests.processes import hub_process_env, purge_queue, start, stop, wait_for
from tests.syncing import contacts, mirror_job

pytestmark = pytest.mark.django_db(transaction=True)


def enqueue(func: str, *args) -> None:
    from django_q.tasks import async_task

    async_task(func, *args)


def test_a_worker_killed_mid_run_resumes_with_no_duplicate_and_no_gap(sandbox_crm):
    rows = contacts(1200, timestamps=9)
    job = mirror_job(sandbox_crm, page_size=40)
    SandboxState.objects.update(latency_ms=60)  # about a tenth of a second per page
    purge_queue()
    env = hub_process_env(Q_WORKERS="1", HUB_SYNC_LEASE_SECONDS="3")
    cluster = start(["qcluster"], env)
    try:
        enqueue("syncs.services.runner.run_job", job.slug)
        db_connection.close()
        run = wait_for(
            lambda: SyncRun.objects.filter(pages__gte=5).first(), 60, "the run to reach page 5"
        )
        os.killpg(cluster.pid, signal.SIGKILL)
        cluster.wait(timeout=30)
    finally:
        stop(cluster)
    run.refresh_from_db()
    assert run.status == "running" and 0 < run.fetched < 1200
    SandboxState.objects.update(latency_ms=0)

    # a new cluster; the sweeper finds the run whose lease ran out and continues it
    wait_for(
        lambda: job.__class__.objects.get(pk=job.pk).lease_until < timezone.now(),
        10,
        "the dead worker's lease to run out",
    )
    cluster = start(["qcluster"], env)
    try:
        enqueue("syncs.services.runner.sweep")
        wait_for(
            lambda: SyncRun.objects.get(pk=run.pk).status == "succeeded", 90, "the resumed run"
        )
    finally:
        stop(cluster)
    run.refresh_from_db()
    assert run.resumed == 1
    assert (run.fetched, run.created, run.unchanged, run.failed) == (1200, 1200, 0, 0)
    assert sorted(MirrorRecord.objects.values_list("external_id", flat=True)) == sorted(
        f"c_{row.pk}" for row in rows
    )
    assert SyncRun.objects.count() == 1


def test_a_run_paused_by_retry_after_is_continued_by_the_cluster_scheduler(sandbox_crm):
    contacts(150, timestamps=3)
    job = mirror_job(sandbox_crm, page_size=50)
    Connection.objects.filter(pk=sandbox_crm.pk).update(retry_max_elapsed=0.5)
    bump_generation()
    SandboxState.objects.update(rate_limit=1, rate_window_seconds=60, retry_after_seconds=3)

    run = run_job(job.slug)
    assert (run.status, run.pages) == ("paused", 1)
    assert run.next_attempt_at <= timezone.now() + timedelta(seconds=4)

    SandboxState.objects.update(rate_limit=0)  # the partner's window has passed
    purge_queue()
    cluster = start(["qcluster"], hub_process_env(Q_WORKERS="1"))
    db_connection.close()
    try:
        wait_for(
            lambda: SyncRun.objects.get(pk=run.pk).status == "succeeded",
            90,
            "the scheduler to continue the paused run",
        )
    finally:
        stop(cluster)
    run.refresh_from_db()
    assert (run.fetched, run.created, run.resumed) == (150, 150, 1)
    assert SandboxContact.objects.count() == MirrorRecord.objects.count() == 150
