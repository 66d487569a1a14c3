"""Running a sync job: one run at a time, page by page, the cursor advanced only with a committed
page, resumable after a lost worker, paused (not sleeping) on a long ``Retry-After``.

The incremental cursor is the last committed change time and the ids read at exactly that time:
the next run asks the source for changes since that time (inclusive) and drops the records it
already has, so records sharing a timestamp across a page (or run) boundary are neither skipped
nor read twice, whatever order the source gives ids in. Sources must list records in order of
change (oldest first).
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connections, transaction
from django.db.models import F, Q
from django.utils import timezone

from connectors import hub
from connectors.correlation import correlation_scope, new_correlation_id
from connectors.engine import calllog
from connectors.engine.errors import PermanentError, RetryableError
from flows.mapping import MappingError, apply_rules, canonical
from flows.paths import MISSING, get_path
from flows.services.runner import mapping_specs, run_flow
from syncs import schedules
from syncs.models import (
    MirrorRecord,
    RunState,
    SourceKind,
    SyncJob,
    SyncMode,
    SyncRun,
    TargetKind,
)
from syncs.pagination import get_strategy
from syncs.registry import sources, targets

__all__ = ["continue_run", "run_job", "scheduled_run", "start_run", "sweep"]

logger = logging.getLogger("syncs.runner")

MAX_ERRORS = 20
MAX_PAGES = 100_000  # a bound on any loop: a source that never stops paging is an error
TRANSIENT_PAUSE = timedelta(seconds=30)
MAX_PAUSES = 20


class _Pause(Exception):
    def __init__(self, until: datetime, reason: str):
        super().__init__(reason)
        self.until = until
        self.reason = reason


def lease() -> timedelta:
    return timedelta(seconds=settings.HUB_SYNC_LEASE_SECONDS)


# -- claiming -------------------------------------------------------------------------------


def start_run(job: SyncJob, trigger: str) -> SyncRun:
    """Claim the job and return the run to execute: a new one, or the one to resume (paused
    and due, or left running by a lost worker). When another run holds the job, or a paused
    run is not due yet, a *skipped* run is recorded and returned."""
    now = timezone.now()
    won = (
        SyncJob.objects.filter(pk=job.pk)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(lease_until=now + lease())
    )
    active = job.runs.filter(status__in=[RunState.RUNNING, RunState.PAUSED]).first()
    if not won:
        return _skipped(job, trigger, f"run #{active.pk if active else '?'} is still going")
    paused = active is not None and active.status == RunState.PAUSED
    if paused and active.next_attempt_at and active.next_attempt_at > now:
        _release(job)
        return _skipped(
            job, trigger, f"run #{active.pk} is paused until {active.next_attempt_at:%H:%M:%S}"
        )
    if active is not None:
        # paused and due, or left "running" by a worker whose lease ran out: continue it
        active.status = RunState.RUNNING
        active.resumed += 1
        active.next_attempt_at = None
        active.save(update_fields=["status", "resumed", "next_attempt_at"])
        return active
    job.refresh_from_db(fields=["cursor"])
    return SyncRun.objects.create(
        job=job,
        trigger=trigger,
        mode=job.mode,
        cursor_before=job.cursor,
        cursor_after=job.cursor,
        correlation_id=new_correlation_id(),
    )


def _skipped(job, trigger, message) -> SyncRun:
    """Record a skipped tick: on the job's latest run when it is a skip already (a long run
    skipped by every cron tick is one row with a count, not one row per tick)."""
    now = timezone.now()
    logger.info("sync %s: %s run skipped: %s", job.slug, trigger, message)
    latest = job.runs.order_by("-started_at", "-pk").first()
    if latest is not None and latest.status == RunState.SKIPPED:
        SyncRun.objects.filter(pk=latest.pk).update(
            skips=F("skips") + 1, finished_at=now, message=message[:500], trigger=trigger
        )
        latest.refresh_from_db()
        return latest
    return SyncRun.objects.create(
        skips=1,
        job=job,
        trigger=trigger,
        mode=job.mode,
        status=RunState.SKIPPED,
        finished_at=now,
        message=message[:500],
        cursor_before=job.cursor,
        cursor_after=job.cursor,
        correlation_id=new_correlation_id(),
    )


def _release(job: SyncJob) -> None:
    SyncJob.objects.filter(pk=job.pk).update(lease_until=None)


def _renew(job: SyncJob) -> None:
    SyncJob.objects.filter(pk=job.pk).update(lease_until=timezone.now() + lease())


# -- cursor -----------------------------------------------------------------------------------


def _parse_time(value) -> datetime | None:
    if value is None or value is MISSING or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        parsed = datetime.fromtimestamp(value, UTC)
    else:
        try:
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass
class _Cursor:
    """(time, ids read at that time), and/or the partner's opaque sync token."""

    at: datetime | None
    ids: set[str]
    token: str | None = None

    @classmethod
    def load(cls, data: dict) -> _Cursor:
        return cls(_parse_time(data.get("at")), set(data.get("ids") or []), data.get("token"))

    def copy(self) -> _Cursor:
        return _Cursor(self.at, set(self.ids), self.token)

    def dump(self) -> dict:
        out: dict = {}
        if self.at is not None:
            out.update(at=self.at.isoformat(), ids=sorted(self.ids))
        if self.token:
            out["token"] = self.token
        return out

    def already_read(self, at: datetime | None, record_id: str) -> bool:
        if self.at is None or at is None:
            return False
        return at < self.at or (at == self.at and record_id in self.ids)

    def advance(self, at: datetime | None, record_id: str) -> None:
        if at is None:
            return
        if self.at is None or at > self.at:
            self.at, self.ids = at, {record_id}
        elif at == self.at:
            self.ids.add(record_id)


# -- the run ------------------------------------------------------------------------------------


@dataclass
class _Context:
    job: SyncJob
    run: SyncRun
    cursor: _Cursor
    progress: Callable | None = None
    sync_token: str | None = None


def run_job(slug: str, trigger: str = "manual", progress: Callable | None = None) -> SyncRun:
    """Run a job now (in this process): what the schedule, *Run now* and ``syncs run`` do."""
    job = SyncJob.objects.select_related("source_connection", "target_flow").get(slug=slug)
    run = start_run(job, trigger)
    if run.status == RunState.SKIPPED:
        return run
    return execute(job, run, progress)


def scheduled_run(slug: str) -> str:
    """The django-q2 task of a job's cron schedule."""
    job = SyncJob.objects.filter(slug=slug, enabled=True).first()
    if job is None:
        return "skipped: no such enabled job"
    return run_job(slug, "schedule").status


def continue_run(run_id: int) -> str:
    """The task that continues a paused run when its time has come, or a run whose worker was
    lost (``start_run`` decides: a run still held by a live worker is left alone)."""
    run = SyncRun.objects.select_related("job").filter(pk=run_id).first()
    if run is None or run.status not in (RunState.PAUSED, RunState.RUNNING):
        return "nothing to continue"
    return run_job(run.job.slug, "continuation").status


def sweep() -> int:
    """Continue paused runs whose time has come and runs whose worker was lost (their lease
    ran out): the schedule that carried them may have been lost too. Returns how many."""
    from django_q.tasks import async_task

    now = timezone.now()
    due = SyncRun.objects.filter(
        Q(status=RunState.PAUSED, next_attempt_at__lte=now)
        | Q(status=RunState.RUNNING, job__lease_until__lt=now)
        | Q(status=RunState.RUNNING, job__lease_until__isnull=True)
    ).select_related("job")
    count = 0
    for run in due:
        async_task(schedules.CONTINUE_TASK, run.pk)
        count += 1
    return count


def execute(job: SyncJob, run: SyncRun, progress: Callable | None = None) -> SyncRun:
    ctx = _Context(job, run, _Cursor.load(job.cursor), progress)
    # the source's calls carry the sync run; a flow target's calls, their own flow run
    with correlation_scope(run.correlation_id), calllog.run_scope(f"sync_run:{run.pk}"):
        try:
            if job.source_kind == SourceKind.PYTHON:
                _pull_python(ctx)
            else:
                _pull_connection(ctx)
            if job.mode == SyncMode.FULL and job.target_kind == TargetKind.MIRROR:
                _mark_disappeared(ctx)
        except _Pause as pause:
            _pause(ctx, pause.until, pause.reason)
            return run
        except Exception as exc:
            _finish(ctx, RunState.FAILED, f"{type(exc).__name__}: {exc}")
            if isinstance(exc, (PermanentError, MappingError, ValueError, KeyError)):
                return run
            raise
    _finish(ctx, RunState.PARTIAL if run.failed else RunState.SUCCEEDED, "")
    return run


def _pause(ctx: _Context, until: datetime, reason: str) -> None:
    run = ctx.run
    if run.resumed >= MAX_PAUSES:
        _finish(ctx, RunState.FAILED, f"gave up after {run.resumed} pauses: {reason}")
        return
    run.status = RunState.PAUSED
    run.next_attempt_at = until
    run.message = f"paused: {reason}"[:500]
    run.save(update_fields=["status", "next_attempt_at", "message"])
    _release(ctx.job)
    schedules.schedule_continuation(run, until)
    logger.warning("sync %s run %s paused until %s: %s", ctx.job.slug, run.pk, until, reason)


def _finish(ctx: _Context, status: str, message: str) -> None:
    run = ctx.run
    run.status = status
    run.finished_at = timezone.now()
    run.message = message[:500]
    run.page_state = {}
    run.cursor_after = ctx.cursor.dump() or run.cursor_after
    run.save()
    _release(ctx.job)


def _record_error(run: SyncRun, record_id: str, message: str) -> None:
    run.failed += 1
    if len(run.errors) < MAX_ERRORS:
        run.errors.append({"record": record_id, "error": message[:500]})


def _pull_connection(ctx: _Context) -> None:
    job, run = ctx.job, ctx.run
    connection = job.source_connection
    strategy = get_strategy(job.pagination)
    options = {**(job.pagination_options or {}), "_base_url": connection.base_url}
    if run.page_state:
        state = run.page_state
    else:
        params = {}
        token_param = options.get("sync_token_param")
        if job.mode == SyncMode.INCREMENTAL and token_param and ctx.cursor.token:
            params[token_param] = ctx.cursor.token
        elif job.mode == SyncMode.INCREMENTAL and job.since_param and ctx.cursor.at:
            since = ctx.cursor.at - timedelta(seconds=job.overlap_seconds)
            params[job.since_param] = since.isoformat()
        state = strategy.first(params, options, job.page_size)
    # The next page is fetched while this one is written (one helper thread, its own database
    # connection for the call log, this run's correlation id): the partner's latency hides
    # behind the mapping and the writes. Pages are still committed one after the other.
    fetcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sync-{job.slug}")
    context = contextvars.copy_context()

    def fetch(page_state):
        path, params = strategy.request(page_state, options, job.page_size)
        if job.source_method == "POST" and not path:
            # a search endpoint: filters and paging in the body (a next link is still a GET)
            return context.copy().run(hub.call, connection, "POST", job.source_path, json=params)
        return context.copy().run(
            hub.call, connection, "GET", path or job.source_path, params=params
        )

    try:
        pending = fetcher.submit(fetch, state)
        for _ in range(MAX_PAGES):
            try:
                response = pending.result()
            except RetryableError as exc:
                until = exc.retry_at or timezone.now() + TRANSIENT_PAUSE
                raise _Pause(until, str(exc)) from exc
            body = response.json()
            records = get_path(body, job.records_path) if job.records_path else body
            if not isinstance(records, list):
                raise ValueError(
                    f'the page has no list of records at "{job.records_path}" (check the '
                    "job's records path)"
                )
            next_state = strategy.next(state, response, records, options, job.page_size)
            if next_state is None and options.get("sync_token_path"):
                token = get_path(body, options["sync_token_path"])
                ctx.sync_token = None if token is MISSING or token in (None, "") else str(token)
            if next_state is not None:
                pending = fetcher.submit(fetch, next_state)
            _commit_page(ctx, records, next_state)
            if next_state is None:
                return
            state = next_state
    finally:
        fetcher.submit(connections.close_all)  # the helper thread's own connections
        fetcher.shutdown(wait=True)
    raise ValueError(f"the source gave more than {MAX_PAGES} pages; stopped")


def _pull_python(ctx: _Context) -> None:
    job = ctx.job
    source = sources.lookup(job.source_python)
    since = None
    if job.mode == SyncMode.INCREMENTAL and ctx.cursor.at:
        since = ctx.cursor.at - timedelta(seconds=job.overlap_seconds)
    page: list = []
    for record in source(since):
        page.append(record)
        if len(page) == job.page_size:
            _commit_page(ctx, page, {})  # a Python source resumes from the cursor alone
            page = []
    _commit_page(ctx, page, None)


def _record_id(job: SyncJob, record) -> str:
    found = get_path(record, job.id_field) if isinstance(record, dict) else MISSING
    return "" if found is MISSING or found is None else str(found)


def _commit_page(ctx: _Context, records: list, next_state) -> None:
    """Write a page's records to the target, then, in the same transaction, the cursor, the
    run's counters and where the next page starts."""
    job, run = ctx.job, ctx.run
    fresh: list[tuple[str, datetime | None, dict]] = []
    options = job.pagination_options or {}
    # with the partner's sync token, the partner itself says what changed: nothing to filter
    filtering = (
        job.mode == SyncMode.INCREMENTAL
        and not job.overlap_seconds
        and not options.get("sync_token_path")
    )
    for record in records:
        record_id = _record_id(job, record)
        if not record_id:
            _record_error(run, "?", f'a record without "{job.id_field}"')
            continue
        at = _parse_time(get_path(record, job.updated_field)) if job.updated_field else None
        if filtering and ctx.cursor.already_read(at, record_id):
            continue
        fresh.append((record_id, at, record))
    cursor = ctx.cursor.copy()
    for record_id, at, _record in fresh:
        cursor.advance(at, record_id)
    if next_state is None and ctx.sync_token:
        cursor.token = ctx.sync_token  # kept with the last page: the next run starts from it
    # Flow and Python targets call out (HTTP, site code): never inside a database
    # transaction. Their effects are idempotent (upsert, keys), so a page cut in the middle is
    # simply done again. The mirror is written in the same transaction as the cursor.
    if job.target_kind == TargetKind.FLOW:
        _to_flow(ctx, fresh)
    elif job.target_kind == TargetKind.PYTHON:
        _to_python(ctx, fresh)
    with transaction.atomic():
        if job.target_kind == TargetKind.MIRROR:
            _to_mirror(ctx, fresh)
        run.pages += 1
        run.fetched += len(fresh)
        run.page_state = next_state or {}
        run.cursor_after = cursor.dump() or run.cursor_after
        run.save()
        SyncJob.objects.filter(pk=job.pk).update(
            cursor=run.cursor_after, lease_until=timezone.now() + lease()
        )
    ctx.cursor = cursor
    if ctx.progress:
        ctx.progress(run)


def _mapped(ctx: _Context, fresh):
    specs = mapping_specs(ctx.job.mapping_id)
    for record_id, at, record in fresh:
        result = apply_rules(specs, record)
        if result.errors:
            _record_error(ctx.run, record_id, "; ".join(result.errors))
            continue
        yield record_id, at, result.output


def _to_mirror(ctx: _Context, fresh) -> None:
    job, run = ctx.job, ctx.run
    mapped = list(_mapped(ctx, fresh))
    if not mapped:
        return
    now = timezone.now()
    existing = {
        row.external_id: row
        for row in MirrorRecord.objects.filter(
            connection_id=job.source_connection_id,
            object_type=job.object_type,
            external_id__in=[record_id for record_id, _, _ in mapped],
        ).only("pk", "external_id", "content_hash", "disappeared_at")
    }
    new: dict[str, tuple] = {}  # a source listing an id twice in a page: its last version
    changed, seen = [], []
    for record_id, at, data in mapped:
        _text, digest = canonical(data)
        row = existing.get(record_id)
        if row is None:
            new[record_id] = (data, digest, at)
        elif row.content_hash == digest and row.disappeared_at is None:
            run.unchanged += 1
            row.last_seen_run = run.pk
            seen.append(row)
        else:
            row.data, row.content_hash, row.source_updated_at = data, digest, at
            row.last_synced_at, row.last_seen_run, row.disappeared_at = now, run.pk, None
            changed.append(row)
    _insert_mirror_rows(job, run, new, now)
    fields = ["data", "content_hash", "source_updated_at", "last_synced_at", "last_seen_run"]
    MirrorRecord.objects.bulk_update(changed, [*fields, "disappeared_at"])
    if seen:
        MirrorRecord.objects.filter(pk__in=[row.pk for row in seen]).update(last_seen_run=run.pk)
    run.created += len(new)
    run.updated += len(changed)


def _insert_mirror_rows(job: SyncJob, run: SyncRun, new: dict, now: datetime) -> None:
    """New mirror rows, in multi-row INSERTs (``bulk_create``)."""
    MirrorRecord.objects.bulk_create(
        [
            MirrorRecord(
                connection_id=job.source_connection_id,
                object_type=job.object_type,
                external_id=record_id,
                data=data,
                content_hash=digest,
                source_updated_at=at,
                last_synced_at=now,
                last_seen_run=run.pk,
            )
            for record_id, (data, digest, at) in new.items()
        ],
        batch_size=500,
    )


def _to_flow(ctx: _Context, fresh) -> None:
    job, run = ctx.job, ctx.run
    renewed = time.monotonic()
    for record_id, at, record in fresh:
        if time.monotonic() - renewed > lease().total_seconds() / 3:
            # a page of slow partner calls must not look like a lost worker to the sweeper
            _renew(job)
            renewed = time.monotonic()
        stamp = at.isoformat() if at else canonical(record)[1][:16]
        try:
            result = run_flow(
                job.target_flow,
                record,
                trigger="sync",
                trigger_ref=f"sync:{job.slug}:{record_id}:{stamp}",
                correlation_id=run.correlation_id,
            )
        except (MappingError, PermanentError) as exc:
            _record_error(run, record_id, str(exc))
            continue
        except RetryableError as exc:
            # the page is not committed: after the pause it is read again, and the records
            # already written are found by the upsert's lookup (unchanged), not created twice
            raise _Pause(exc.retry_at or timezone.now() + TRANSIENT_PAUSE, str(exc)) from exc
        outcome = result.run.outcome
        if outcome == "created":
            run.created += 1
        elif outcome == "unchanged" or result.run.status == "skipped":
            run.unchanged += 1
        else:
            run.updated += 1


def _to_python(ctx: _Context, fresh) -> None:
    job, run = ctx.job, ctx.run
    handler = targets.lookup(job.target_python)
    mapped = [{**data, "_id": record_id} for record_id, _, data in _mapped(ctx, fresh)]
    if not mapped:
        return
    counts = handler(mapped, job) or {}
    run.created += int(counts.get("created", 0))
    run.updated += int(counts.get("updated", len(mapped) if not counts else 0))
    run.unchanged += int(counts.get("unchanged", 0))
    for failure in counts.get("failed", []):
        _record_error(run, str(failure.get("id", "?")), str(failure.get("error", "")))


def _mark_disappeared(ctx: _Context) -> None:
    job, run = ctx.job, ctx.run
    gone = MirrorRecord.objects.filter(
        connection_id=job.source_connection_id,
        object_type=job.object_type,
        disappeared_at__isnull=True,
    ).exclude(last_seen_run=run.pk)
    run.disappeared = gone.update(disappeared_at=timezone.now())
    run.save(update_fields=["disappeared"])
