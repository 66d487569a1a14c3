"""Sync jobs in the console and from a terminal: next and last run, Run now, the run history,
a failing job on its connection, the mirror's CSV export with personal data masked for those
without the permission, ``syncs run`` / ``syncs status``, and sync jobs as code."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from flows import iac
from sandbox.models import SandboxContact
from syncs.models import MirrorRecord, SyncJob, SyncRun
from syncs.services.runner import run_job
from tests.syncing import contacts, mirror_job

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_job_page_shows_next_and_last_run_and_runs_now(sandbox_crm, operator_client):
    from django_q.models import Schedule

    job = mirror_job(sandbox_crm, cron="0 2 * * *")
    assert Schedule.objects.get(name="sync:contacts").cron == "0 2 * * *"
    contacts(10, timestamps=1)
    run_job(job.slug)
    listing = operator_client.get("/admin/syncs/syncjob/").content.decode()
    assert "Succeeded" in listing
    page = operator_client.get(f"/admin/syncs/syncjob/{job.pk}/change/").content.decode()
    assert "Run now" in page and f"?job__id__exact={job.pk}" in page
    from django_q.brokers import get_broker

    broker = get_broker()
    broker.purge_queue()
    response = operator_client.post(f"/admin/syncs/syncjob/{job.pk}/run/")
    assert response.status_code == 302
    assert broker.queue_size() == 1  # queued for the workers, not run in the request
    assert SyncRun.objects.count() == 1


def test_a_failing_job_is_visible_on_its_connection(sandbox_crm, integration_admin_client):
    job = mirror_job(sandbox_crm, records_path="nowhere")
    contacts(3, timestamps=1)
    run = run_job(job.slug)
    assert run.status == "failed"
    page = integration_admin_client.get(
        f"/admin/connectors/connection/{sandbox_crm.pk}/change/"
    ).content.decode()
    assert "sync <a" in page and "Failed" in page


def test_the_mirror_export_masks_personal_data_without_the_permission(
    sandbox_crm, operator_client, auditor_client
):
    SandboxContact.objects.create(email="ada@x.test", data={"email": "ada@x.test", "plan": "pro"})
    run_job(mirror_job(sandbox_crm).slug)
    record = MirrorRecord.objects.get()

    def export(client):
        response = client.post(
            "/admin/syncs/mirrorrecord/",
            {"action": "export_csv", "_selected_action": [record.pk]},
        )
        assert response["Content-Type"].startswith("text/csv")
        return list(csv.DictReader(io.StringIO(response.content.decode())))

    [masked] = export(operator_client)
    assert masked["email"] == "•••" and masked["plan"] == "pro"
    [clear] = export(auditor_client)  # the DPO reads personal data
    assert clear["email"] == "ada@x.test"
    page = operator_client.get(f"/admin/syncs/mirrorrecord/{record.pk}/change/").content.decode()
    assert "ada@x.test" not in page and "•••" in page


def test_concurrent_pages_never_show_an_operator_what_only_the_dpo_may_see(
    sandbox_crm, operator_client, auditor_client
):
    import threading

    from django.contrib import admin
    from django.db import connections

    SandboxContact.objects.create(email="ada@x.test", data={"email": "ada@x.test", "plan": "pro"})
    run_job(mirror_job(sandbox_crm).slug)
    record = MirrorRecord.objects.get()
    url = f"/admin/syncs/mirrorrecord/{record.pk}/change/"
    # one ModelAdmin instance serves both users' threads: it must keep no per-request state
    model_admin = admin.site.get_model_admin(MirrorRecord)
    seen: dict[str, list[str]] = {"operator": [], "dpo": []}

    def browse(who, client):
        try:
            for _ in range(15):
                seen[who].append(client.get(url).content.decode())
        finally:
            connections.close_all()  # this thread's own (the test client keeps it open)

    threads = [
        threading.Thread(target=browse, args=("operator", operator_client)),
        threading.Thread(target=browse, args=("dpo", auditor_client)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(seen["operator"]) == len(seen["dpo"]) == 15
    assert all("ada@x.test" not in page and "•••" in page for page in seen["operator"])
    assert all("ada@x.test" in page for page in seen["dpo"])
    assert not [name for name in vars(model_admin) if "pii" in name]


def test_syncs_run_prints_progress_and_syncs_status_lists_jobs(sandbox_crm):
    contacts(120, timestamps=2)
    mirror_job(sandbox_crm, page_size=50)
    out = io.StringIO()
    call_command("syncs", "run", "contacts", stdout=out)
    text = out.getvalue()
    assert "contacts: page 3, 120 records" in text and "Succeeded" in text
    status = io.StringIO()
    call_command("syncs", "status", stdout=status)
    lines = status.getvalue().splitlines()
    assert lines[0].split()[:3] == ["job", "enabled", "schedule"]
    assert lines[1].split()[:3] == ["contacts", "yes", "by"]
    with pytest.raises(CommandError, match='no sync job "nope"'):
        call_command("syncs", "run", "nope")


def test_sync_jobs_round_trip_as_code(sandbox_crm, monkeypatch, secret_value):
    job = mirror_job(sandbox_crm, cron="15 3 * * *", overlap_seconds=5)
    monkeypatch.setenv("HUB_CRM_API_KEY", secret_value)
    first = iac.dump(iac.export_document())
    assert "syncs:\n- slug: contacts" in first
    SyncJob.objects.all().delete()
    report = iac.apply_document(iac.load(first))
    assert "+ sync job contacts (created)" in report.changes
    assert iac.dump(iac.export_document()) == first
    assert SyncJob.objects.get().overlap_seconds == 5
    assert job.pk != SyncJob.objects.get().pk
    document = iac.load(first)
    document["syncs"][0]["source"]["pagination"] = "scroll"
    document["syncs"][0]["target"]["mapping"] = "missing"
    with pytest.raises(iac.InvalidDocument) as caught:
        iac.apply_document(document)
    assert caught.value.errors == ['syncs[0].target.mapping: unknown mapping "missing"']
    document["syncs"][0]["target"]["mapping"] = iac.load(first)["syncs"][0]["target"]["mapping"]
    with pytest.raises(iac.InvalidDocument) as caught:
        iac.apply_document(document)
    assert caught.value.errors[0].startswith(
        'syncs[0].source.pagination: unknown pagination "scroll"'
    )
    assert SyncRun.objects.count() == 0
