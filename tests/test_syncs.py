"""Scheduled syncs against the sandbox CRM and scripted partners over real HTTP on 127.0.0.1:
each pagination strategy, 10,000 records with many equal timestamps across page boundaries,
a run resumed after being cut in the middle, overlapping runs, a full run that finds a deleted
record, and a push from a registered Python source into the sandbox CRM."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from connectors.choices import CredentialKind
from connectors.engine.circuit import reset
from connectors.models import Connection
from connectors.services.credentials import create_credential
from flows.models import Flow
from sandbox.models import SandboxContact, SandboxState
from syncs.models import MirrorRecord, SyncJob, SyncRun
from syncs.services.runner import run_job, scheduled_run
from tests.partners import Reply
from tests.syncing import contacts, make_mapping, mirror_job, mirrored_ids

pytestmark = pytest.mark.django_db(transaction=True)


def test_ten_thousand_records_with_equal_timestamps_are_neither_skipped_nor_read_twice(sandbox_crm):
    rows = contacts(10_000, timestamps=40)  # 250 records share each time; pages hold 97
    job = mirror_job(sandbox_crm)

    first = run_job(job.slug)

    assert first.status == "succeeded", first.message
    assert (first.fetched, first.created, first.unchanged) == (10_000, 10_000, 0)
    assert first.pages == 104
    assert sorted(mirrored_ids(sandbox_crm)) == sorted(f"c_{row.pk}" for row in rows)
    job.refresh_from_db()
    last_time = max(SandboxContact.objects.values_list("updated_at", flat=True))
    assert job.cursor["at"] == last_time.isoformat() and len(job.cursor["ids"]) == 250

    # new records at exactly the cursor's time, and five records changed a second later
    late = SandboxContact.objects.bulk_create(
        SandboxContact(email=f"late{i}@x.test", data={"email": f"late{i}@x.test"})
        for i in range(30)
    )
    SandboxContact.objects.filter(pk__in=[r.pk for r in late]).update(updated_at=last_time)
    changed = [row.pk for row in rows[:5]]
    for contact in SandboxContact.objects.filter(pk__in=changed):
        contact.data = {**contact.data, "plan": "pro"}
        contact.save()
        SandboxContact.objects.filter(pk=contact.pk).update(
            updated_at=last_time + timedelta(seconds=1)
        )

    second = run_job(job.slug)

    assert (second.fetched, second.created, second.updated, second.unchanged) == (35, 30, 5, 0)
    assert MirrorRecord.objects.filter(data__plan="pro").count() == 5
    third = run_job(job.slug)
    assert (third.fetched, third.created, third.updated) == (0, 0, 0)
    assert MirrorRecord.objects.count() == 10_030


class Crash(BaseException):
    """Stands for the worker dying between two pages."""


def test_a_run_cut_in_the_middle_resumes_from_its_last_committed_page(sandbox_crm):
    rows = contacts(500, timestamps=7)
    job = mirror_job(sandbox_crm, page_size=40)

    def crash_after_four_pages(run):
        if run.pages == 4 and run.resumed == 0:
            raise Crash

    with pytest.raises(Crash):
        run_job(job.slug, progress=crash_after_four_pages)
    run = SyncRun.objects.get()
    assert (run.status, run.pages, run.fetched) == ("running", 4, 160)
    # the next start while the lease holds is an overlapping run: skipped and recorded
    assert scheduled_run(job.slug) == "skipped"
    # once the lease has run out, the next start resumes the same run where it stopped
    SyncJob.objects.filter(pk=job.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    resumed = run_job(job.slug)
    assert resumed.pk == run.pk and resumed.resumed == 1
    assert (resumed.status, resumed.fetched, resumed.created, resumed.unchanged) == (
        "succeeded",
        500,
        500,
        0,
    )
    assert sorted(mirrored_ids(sandbox_crm)) == sorted(f"c_{row.pk}" for row in rows)
    skipped = SyncRun.objects.get(status="skipped")
    assert skipped.trigger == "schedule" and f"run #{run.pk} is still going" in skipped.message


def test_overlapping_schedules_are_skipped_and_recorded(sandbox_crm):
    contacts(120, timestamps=3)
    job = mirror_job(sandbox_crm, page_size=50)
    outcomes = []

    def fire_the_schedule_meanwhile(run):
        if run.pages in (1, 2):  # two cron ticks while the run goes on
            outcomes.append(scheduled_run(job.slug))

    run = run_job(job.slug, progress=fire_the_schedule_meanwhile)
    assert run.status == "succeeded" and outcomes == ["skipped", "skipped"]
    # the repeated skips are one row with a count, not a row per tick
    (skipped,) = SyncRun.objects.filter(status="skipped")
    assert skipped.skips == 2 and f"run #{run.pk} is still going" in skipped.message


def test_a_full_run_reports_a_record_deleted_at_the_source(sandbox_crm):
    rows = contacts(60, timestamps=2)
    job = mirror_job(sandbox_crm, mode="full", page_size=25)
    assert run_job(job.slug).created == 60
    SandboxContact.objects.filter(pk=rows[7].pk).delete()

    again = run_job(job.slug)

    assert (again.fetched, again.unchanged, again.disappeared) == (59, 59, 0 + 1)
    gone = MirrorRecord.objects.get(external_id=f"c_{rows[7].pk}")
    assert gone.disappeared_at is not None
    assert MirrorRecord.objects.filter(disappeared_at__isnull=True).count() == 59


def test_the_mirror_keeps_mapped_fields_only_and_skips_unchanged_records(sandbox_crm):
    SandboxContact.objects.create(
        email="a@x.test", data={"email": "a@x.test", "plan": "pro", "iban": "FR7612345"}
    )
    job = mirror_job(sandbox_crm, mode="full")
    run_job(job.slug)
    record = MirrorRecord.objects.get()
    assert record.data == {"email": "a@x.test", "plan": "pro"}
    assert run_job(job.slug).unchanged == 1


def page(items, **headers):
    return Reply(200, json=items, headers=headers)


@pytest.fixture
def scripted(partner, secret_value, db):
    connection = Connection.objects.create(
        name="Scripted", slug="scripted", base_url=partner.url + "/v1", retry_max_attempts=1
    )
    create_credential(connection, CredentialKind.API_KEY, secret_value)
    reset(connection)
    return connection


def items(*ids):
    return [{"id": i, "email": f"{i}@x.test"} for i in ids]


def scripted_job(connection, pagination, **options) -> SyncJob:
    return mirror_job(
        connection,
        slug=f"s-{pagination}",
        source_path="/items",
        pagination=pagination,
        pagination_options=options,
        records_path="",
        updated_field="",
        since_param="",
        mode="full",
        page_size=2,
    )


def test_link_header_pagination_follows_rel_next(scripted, partner):
    base = partner.url + "/v1"
    partner.script(
        page(
            items(1, 2), Link=f'<{base}/items?page=2&per_page=2>; rel="next", <{base}>; rel="first"'
        ),
        page(items(3), Link=f'<{base}/items?page=1>; rel="prev"'),
    )
    run = run_job(scripted_job(scripted, "link_header").slug)
    assert run.status == "succeeded" and run.created == 3
    assert [r.path for r in partner.requests] == [
        "/v1/items?per_page=2",
        "/v1/items?page=2&per_page=2",
    ]


def test_a_next_link_to_another_origin_is_refused(scripted, partner):
    partner.script(page(items(1, 2), Link='<http://169.254.169.254/latest>; rel="next"'))
    run = run_job(scripted_job(scripted, "link_header").slug)
    assert run.status == "failed" and "leaves the partner's origin" in run.message
    assert len(partner.requests) == 1


def test_offset_pagination(scripted, partner):
    partner.script(page(items(1, 2)), page(items(3, 4)), page(items(5)))
    run = run_job(scripted_job(scripted, "offset").slug)
    assert run.created == 5
    assert [r.path for r in partner.requests] == [
        "/v1/items?offset=0&limit=2",
        "/v1/items?offset=2&limit=2",
        "/v1/items?offset=4&limit=2",
    ]


def test_page_number_pagination(scripted, partner):
    partner.script(page(items(1, 2)), page(items(3, 4)), page([]))
    run = run_job(scripted_job(scripted, "page_number", first_page=1).slug)
    assert (run.created, run.pages) == (4, 3)
    assert [r.path for r in partner.requests] == [
        "/v1/items?page=1&per_page=2",
        "/v1/items?page=2&per_page=2",
        "/v1/items?page=3&per_page=2",
    ]


def test_cursor_token_pagination_with_custom_names(scripted, partner):
    partner.script(
        Reply(200, json={"data": items(1, 2), "paging": {"after": "tok2"}}),
        Reply(200, json={"data": items(3), "paging": {}}),
    )
    job = scripted_job(
        scripted, "cursor_token", cursor_param="after", next_path="paging.after", limit_param="n"
    )
    job.records_path = "data"
    job.save()
    assert run_job(job.slug).created == 3
    assert [r.path for r in partner.requests] == ["/v1/items?n=2", "/v1/items?n=2&after=tok2"]


def test_a_page_without_a_list_fails_the_run_with_the_reason(scripted, partner):
    partner.script(Reply(200, json={"unexpected": True}))
    run = run_job(scripted_job(scripted, "offset").slug)
    assert run.status == "failed" and "no list of records" in run.message


def test_a_long_retry_after_pauses_the_run_with_a_continuation(sandbox_crm):
    from django_q.models import Schedule

    contacts(90, timestamps=3)
    job = mirror_job(sandbox_crm, page_size=30)
    Connection.objects.filter(pk=sandbox_crm.pk).update(retry_max_elapsed=0.5)
    from connectors.engine.config_cache import bump_generation

    bump_generation()
    SandboxState.objects.update(rate_limit=2, rate_window_seconds=60, retry_after_seconds=30)

    run = run_job(job.slug)

    assert (run.status, run.pages, run.fetched) == ("paused", 2, 60)
    assert "429" in run.message or "quota" in run.message
    wait = (run.next_attempt_at - timezone.now()).total_seconds()
    assert 20 < wait <= 31
    continuation = Schedule.objects.get(name=f"sync-continue:{run.pk}")
    assert continuation.next_run == run.next_attempt_at
    job.refresh_from_db()
    assert job.lease_until is None  # no worker is held while it waits
    # a schedule firing before the continuation is due is skipped, not a second run
    assert scheduled_run(job.slug) == "skipped"
    # when the continuation runs (the limit has reset), the run ends where it should
    SandboxState.objects.update(rate_limit=0)
    SyncRun.objects.filter(pk=run.pk).update(next_attempt_at=timezone.now())
    from syncs.services.runner import continue_run

    assert continue_run(run.pk) == "succeeded"
    run.refresh_from_db()
    assert (run.fetched, run.created, run.resumed) == (90, 90, 1)


def test_a_push_from_a_python_source_upserts_into_the_crm_without_duplicates(sandbox_crm):
    from tests import sync_sources

    mapping = make_mapping("email", "name")
    flow = Flow.objects.create(
        slug="push-customers",
        name="push",
        trigger="sync",
        connection=sandbox_crm,
        mapping=mapping,
        path="/contacts",
        match_key="email",
        lookup_path="/contacts?email={email}",
        update_path="/contacts/{id}",
    )
    job = SyncJob(
        slug="push",
        name="site customers → CRM",
        source_kind="python",
        source_python="site-customers",
        target_kind="flow",
        target_flow=flow,
        page_size=10,
    )
    job.full_clean()
    job.save()
    sync_sources.CUSTOMERS[:] = sync_sources.customers(25)

    first = run_job(job.slug)
    assert (first.status, first.fetched, first.created) == ("succeeded", 25, 25)
    assert SandboxContact.objects.count() == 25

    SyncJob.objects.filter(pk=job.pk).update(cursor={})  # read everything again
    again = run_job(job.slug)
    assert (again.fetched, again.created, again.unchanged) == (25, 0, 25)
    assert SandboxContact.objects.count() == 25


def test_a_python_target_receives_each_page_of_mapped_records(sandbox_crm):
    from tests import sync_sources

    contacts(30, timestamps=2)
    sync_sources.RECEIVED.clear()
    job = mirror_job(sandbox_crm, target_kind="python", target_python="collect", page_size=8)
    run = run_job(job.slug)
    assert (run.status, run.fetched, run.created, run.pages) == ("succeeded", 30, 30, 4)
    assert len(sync_sources.RECEIVED) == 30
    assert set(sync_sources.RECEIVED[0]) == {"email", "plan", "_id"}  # mapped fields only
    assert MirrorRecord.objects.count() == 0


def test_an_overlap_window_rereads_recent_records_and_hashes_drop_the_repeats(sandbox_crm):
    contacts(40, timestamps=4)
    job = mirror_job(sandbox_crm, overlap_seconds=3600, page_size=15)
    assert run_job(job.slug).created == 40
    again = run_job(job.slug)
    assert (again.fetched, again.created, again.updated, again.unchanged) == (40, 0, 0, 40)


def test_the_partners_opaque_sync_token_is_the_cursor_when_it_has_one(scripted, partner):
    job = scripted_job(
        scripted,
        "cursor_token",
        next_path="next",
        sync_token_path="sync_token",
        sync_token_param="sync_token",
    )
    job.records_path, job.mode = "data", "incremental"
    job.save()
    partner.script(
        Reply(200, json={"data": items(1, 2), "next": "p2"}),
        Reply(200, json={"data": items(3), "sync_token": "T1"}),
    )
    first = run_job(job.slug)
    assert first.created == 3
    job.refresh_from_db()
    assert job.cursor == {"token": "T1"}

    partner.requests.clear()
    partner.script(Reply(200, json={"data": items(4), "sync_token": "T2"}))
    second = run_job(job.slug)
    assert (second.fetched, second.created) == (1, 1)
    assert [r.path for r in partner.requests] == ["/v1/items?sync_token=T1&limit=2"]
    job.refresh_from_db()
    assert job.cursor == {"token": "T2"}


def test_a_search_endpoint_is_paged_with_post_bodies(scripted, partner):
    import json

    job = scripted_job(scripted, "cursor_token", next_path="next", cursor_param="after")
    job.source_method, job.records_path = "POST", "data"
    job.save()
    partner.script(
        Reply(200, json={"data": items(1, 2), "next": "k2"}),
        Reply(200, json={"data": items(3)}),
    )
    assert run_job(job.slug).created == 3
    assert [(r.method, r.path) for r in partner.requests] == [("POST", "/v1/items")] * 2
    assert [json.loads(r.body) for r in partner.requests] == [
        {"limit": 2},
        {"limit": 2, "after": "k2"},
    ]
