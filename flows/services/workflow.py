"""Running a workflow (a flow of several steps), each step exactly once.

The run's row exists from its start; each step's row (``FlowRunStep``) is written when the step
starts and when it ends, before the next one begins, and each of its API calls as it ends. So:

* a step that succeeded is never executed again: a retried, resumed or replayed run reads its
  stored result and goes on at the first step that did not succeed;
* every write a step makes carries an idempotency key derived from the trigger, the flow and
  the step (``flow:<flow>:<trigger>:<step>``): a worker killed after the partner answered but
  before the step's end was written gets the first answer back when the step runs again;
* a ``delay`` leaves the run ``waiting`` with ``resume_at``; the sweeper's pass
  (:func:`resume_due`) queues it once its time has come. No worker waits;
* a later event can cancel a run's pending steps through the flow's correlation key
  (:func:`cancel_runs`); the run says who cancelled it, and a step never starts on a cancelled
  run (each step begins with a conditional write that a cancelled run fails).

Who carries a run forward: until it first waits, its trigger does (an event's retries, as a
one-action flow's). Once it has waited (or a person retried it by hand), its trigger is done,
and the hub resumes it itself: on a transient error it waits ``backoff`` and resumes, up to
``MAX_ATTEMPTS`` times.
"""

from __future__ import annotations

import logging
import math
import time
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext

from connectors.correlation import correlation_scope, current_correlation_id, new_correlation_id
from connectors.engine import bulkhead, calllog, idempotency
from connectors.engine.errors import ConnectionBusyError, PermanentError, RetryableError
from flows.mapping import MappingError
from flows.models import Flow, FlowCancellation, FlowRun, FlowRunStep, RunStatus, StepStatus
from flows.paths import MISSING, get_path
from flows.services.runner import RunResult, run_lease
from flows.steps import STEP_KINDS, StepContext
from flows.steps.base import context

__all__ = [
    "MAX_ATTEMPTS",
    "cancel",
    "cancel_runs",
    "resume_due",
    "resume_run",
    "resume_runs",
    "retry_by_hand",
    "run_steps",
    "start_later",
]

logger = logging.getLogger("flows.workflow")

RESUME_TASK = "flows.tasks.resume_runs"
# at most this many runs per resumption task (see resume_due)
RESUME_CHUNK = 25
MAX_ATTEMPTS = 8
# how long a cancelling event processed before the event that starts its run still cancels it
EARLY_CANCEL_WINDOW = timedelta(days=1)
# a run already done for its trigger: replaying the trigger changes nothing
SETTLED = (RunStatus.SUCCEEDED, RunStatus.SKIPPED, RunStatus.CANCELLED, RunStatus.WAITING)
# a run that a cancelling event stops
PENDING = (RunStatus.RUNNING, RunStatus.WAITING, RunStatus.RETRYING, RunStatus.INTERRUPTED)


def backoff(attempts: int) -> timedelta:
    """How long a self-resuming run waits after a transient error: 30 s, 1 min, 2 min… 1 h."""
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 3600))


def _cancel_key(flow: Flow, payload) -> str:
    if not flow.correlation_key:
        return ""
    found = get_path(payload, flow.correlation_key)
    return "" if found is MISSING or found is None else str(found)[:200]


def run_steps(
    flow: Flow,
    payload,
    *,
    trigger: str,
    trigger_ref: str,
    event_id: int | None = None,
    correlation_id: str | None = None,
) -> RunResult:
    """Run (or resume) the workflow for this trigger. The same trigger finds its run again:
    a settled run is returned as it is; a run that failed, was retried or was interrupted goes
    on at its first step that did not succeed. Raises the step's error after recording it."""
    existing = _run_for(flow, trigger_ref)
    if existing is not None:
        if existing.status in SETTLED:
            return RunResult(existing, None)
        run = _claim(existing)
        payload = existing.trigger_data if existing.trigger_data is not None else payload
    else:
        now = timezone.now()
        run, cancelled = _new_run(
            flow,
            payload,
            trigger=trigger,
            trigger_ref=trigger_ref,
            event_id=event_id,
            correlation_id=correlation_id or current_correlation_id() or new_correlation_id(),
            status=RunStatus.RUNNING,
            started_at=now,
            lease_until=now + run_lease(),
            attempts=1,
        )
        if cancelled:
            return RunResult(run, None)
    return execute(flow, run, payload)


def _run_for(flow: Flow, trigger_ref: str) -> FlowRun | None:
    """The run this trigger already made, if any (its latest)."""
    return FlowRun.objects.filter(flow=flow, trigger_ref=trigger_ref[:300]).order_by("-pk").first()


def _new_run(flow: Flow, payload, *, trigger: str, trigger_ref: str, **fields):
    """Write a new run for this trigger; ``(run, True)`` when a cancellation of its key was
    processed before it (out of order) and cancelled it at once."""
    run = FlowRun.objects.create(
        flow=flow,
        trigger=trigger,
        trigger_ref=trigger_ref[:300],
        cancel_key=_cancel_key(flow, payload),
        trigger_data=payload,
        **fields,
    )
    early = _early_cancellation(flow, run)
    if early is None:
        return run, False
    cancel(run.pk, by=early.cancelled_by)
    run.refresh_from_db()
    return run, True


def _early_cancellation(flow: Flow, run: FlowRun) -> FlowCancellation | None:
    """The cancellation of ``run``'s key processed before the run started (within
    ``EARLY_CANCEL_WINDOW``). Read after the run's row is written, while :func:`cancel_runs`
    writes its record before it looks for runs: whichever comes second sees the other."""
    if not (flow.cancel_event_type and run.cancel_key):
        return None
    return FlowCancellation.objects.filter(
        flow=flow, key=run.cancel_key, received_at__gte=timezone.now() - EARLY_CANCEL_WINDOW
    ).first()


def _claim(run: FlowRun) -> FlowRun:
    """Take ``run`` for this worker: one conditional write, which only one worker wins; a run
    still held by a live worker is left to it."""
    now = timezone.now()
    claimable = Q(status__in=(RunStatus.RETRYING, RunStatus.FAILED, RunStatus.INTERRUPTED)) | Q(
        status=RunStatus.RUNNING, lease_until__lt=now
    )
    claimed = FlowRun.objects.filter(claimable, pk=run.pk).update(
        status=RunStatus.RUNNING,
        lease_until=now + run_lease(),
        attempts=F("attempts") + 1,
        finished_at=None,
    )
    if not claimed:
        raise RetryableError(
            "this workflow run is being carried by another worker right now; retried shortly",
            retry_at=now + timedelta(seconds=5),
        )
    run.refresh_from_db()
    return run


def execute(flow: Flow, run: FlowRun, payload) -> RunResult:
    """Carry a claimed run (``running``) from its first step that did not succeed."""
    started = time.monotonic()
    # by name: a flow edited while its runs wait keeps what each named step did
    rows = {row.name: row for row in FlowRunStep.objects.filter(run=run)}
    results = {row.name: row.result for row in rows.values() if row.status == StepStatus.SUCCEEDED}
    last = {"outcome": run.outcome, "record_id": run.record_id}

    def finish(status, **fields) -> None:
        elapsed = int((time.monotonic() - started) * 1000)
        values = {
            "status": status,
            "lease_until": None,
            "duration_ms": F("duration_ms") + elapsed,
            "outcome": last["outcome"],
            "record_id": last["record_id"][:200],
            **fields,
        }
        if status != RunStatus.WAITING:
            values.setdefault("finished_at", timezone.now())
        # never over a cancellation that landed meanwhile: who cancelled it is the truth
        FlowRun.objects.filter(pk=run.pk).exclude(status=RunStatus.CANCELLED).update(**values)
        run.refresh_from_db()

    steps = flow.steps
    position = 0
    with correlation_scope(run.correlation_id), calllog.run_scope(run.calls_ref):
        while position < len(steps):
            step = steps[position]
            row = rows.get(step["name"])
            if row is not None and row.status in (StepStatus.SUCCEEDED, StepStatus.SKIPPED):
                position += 1
                continue
            now = timezone.now()
            if row is not None and row.status == StepStatus.WAITING:
                if row.resume_at and row.resume_at > now:  # resumed early: wait again
                    finish(RunStatus.WAITING, resume_at=row.resume_at, current_step=row.name)
                    return RunResult(run, None)
                row.status, row.finished_at = StepStatus.SUCCEEDED, now
                row.save(update_fields=["status", "finished_at"])
                results[row.name] = row.result
                position += 1
                continue
            lease = now + run_lease()
            # the step's start: renews the run's lease, and a cancelled run stops here
            if not FlowRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(
                lease_until=lease, current_step=step["name"]
            ):
                run.refresh_from_db()
                return RunResult(run, None)
            row = _start_row(run, position, step, row, now)
            rows[step["name"]] = row
            kind = STEP_KINDS.lookup(step["kind"])
            ctx = StepContext(
                flow=flow,
                run=run,
                step=step,
                position=position,
                data=context(payload, results),
                key=step_key(flow, run, step),
                first_started_at=row.first_started_at,
            )
            began = time.monotonic()
            try:
                with idempotency.held_until(lease), calllog.step_scope(step["name"]):
                    outcome = kind.run(ctx)
            except (MappingError, PermanentError) as exc:
                _end_row(row, StepStatus.FAILED, began, error=_error(exc), sent=ctx.sent)
                finish(RunStatus.FAILED, error=_error(exc, step["name"]))
                exc.flow_run = run
                raise
            except Exception as exc:
                _end_row(row, StepStatus.RETRYING, began, error=_error(exc), sent=ctx.sent)
                if run.resume_at is not None:  # the hub carries it: wait, then resume
                    if run.attempts >= MAX_ATTEMPTS:
                        finish(RunStatus.FAILED, error=_error(exc, step["name"]))
                    else:
                        finish(
                            RunStatus.WAITING,
                            resume_at=_retry_at(exc, run.attempts),
                            error=_error(exc, step["name"]),
                        )
                else:
                    finish(RunStatus.RETRYING, error=_error(exc, step["name"]))
                exc.flow_run = run
                raise
            if outcome.outcome:
                last.update(outcome=outcome.outcome, record_id=outcome.record_id)
            if outcome.control == "wait":
                _end_row(
                    row,
                    StepStatus.WAITING,
                    began,
                    result=outcome.result,
                    resume_at=outcome.resume_at,
                )
                finish(RunStatus.WAITING, resume_at=outcome.resume_at, error="")
                return RunResult(run, None)
            _end_row(row, StepStatus.SUCCEEDED, began, result=outcome.result, sent=outcome.sent)
            results[step["name"]] = outcome.result
            if outcome.control == "stop":
                _skip(run, steps, position + 1, len(steps))
                finish(RunStatus.SKIPPED, error=outcome.why[:4000])
                return RunResult(run, None)
            if outcome.control == "skip":
                _skip(run, steps, position + 1, position + 1 + outcome.skip)
                position += 1 + outcome.skip
                continue
            position += 1
        finish(RunStatus.SUCCEEDED, error="")
    return RunResult(run, results)


def step_key(flow: Flow, run: FlowRun, step: dict) -> str:
    """The idempotency key of a step's writes: the same trigger, flow and step give the same
    key, on every retry."""
    import hashlib

    key = f"flow:{flow.slug}:{run.trigger_ref}:{step['name']}"
    if len(key) > 200:
        key = key[:120] + ":" + hashlib.sha256(key.encode()).hexdigest()[:40]
    return key


def _start_row(run, position, step, row, now) -> FlowRunStep:
    if row is None:
        try:
            row = FlowRunStep.objects.create(
                run=run,
                position=position,
                name=step["name"],
                kind=step["kind"],
                status=StepStatus.RUNNING,
                attempts=1,
                started_at=now,
            )
            row.first_started_at = now
            return row
        except IntegrityError:  # written by an earlier attempt this process did not see
            row = FlowRunStep.objects.get(run=run, name=step["name"])
    first = row.started_at  # a delay counts from its first attempt's start
    FlowRunStep.objects.filter(pk=row.pk).update(
        status=StepStatus.RUNNING,
        attempts=F("attempts") + 1,
        started_at=now,
        position=position,
        error="",
    )
    row.refresh_from_db()
    row.first_started_at = first
    return row


def _end_row(row, status, began, **fields) -> None:
    row.status = status
    row.finished_at = timezone.now()
    row.duration_ms = int((time.monotonic() - began) * 1000)
    for name, value in fields.items():
        setattr(row, name, value)
    row.save(update_fields=["status", "finished_at", "duration_ms", *fields])


def _skip(run, steps, start: int, end: int) -> None:
    now = timezone.now()
    for position in range(start, min(end, len(steps))):
        FlowRunStep.objects.update_or_create(
            run=run,
            name=steps[position]["name"],
            defaults={
                "position": position,
                "kind": steps[position]["kind"],
                "status": StepStatus.SKIPPED,
                "started_at": now,
                "finished_at": now,
            },
        )


def _error(exc, step: str | None = None) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return (f"step {step}: {text}" if step else text)[:4000]


def _retry_at(exc, attempts: int):
    when = timezone.now() + backoff(attempts)
    retry_at = getattr(exc, "retry_at", None)
    return max(when, retry_at) if retry_at else when


# -- resuming: delays, hand retries, runs whose worker was lost ------------------------------


def _due(now) -> Q:
    return Q(status=RunStatus.WAITING, resume_at__lte=now) | Q(
        status=RunStatus.INTERRUPTED, resume_at__isnull=False
    )


def resume_due(batch_size: int = 500) -> int:
    """Queue the runs whose time has come (a delay ended, a backoff passed) and the
    self-resuming runs whose worker was lost; at most ``batch_size`` per pass. Returns how many
    were queued.

    They are taken by one conditional write (``running`` under this pass's lease) that only
    one sweeper wins for each run, then queued in chunks (:data:`RESUME_CHUNK` at most, fewer
    when few are due, so that every worker gets some): one task per run cost the queue more
    than the run itself, and 10,000 reminders due at the same minute resumed at the queue's
    pace. The lease's exact time is the chunk's token: a run re-taken by a later pass (its lease
    ran out) is carried by the later task only. A chunk the broker refused goes back to
    waiting, and the next pass queues it again."""
    now = timezone.now()
    lease = now + run_lease()
    candidates = list(
        FlowRun.objects.filter(_due(now))
        .order_by("resume_at", "pk")
        .values_list("pk", flat=True)[:batch_size]
    )
    if not candidates:
        return 0
    FlowRun.objects.filter(_due(now), pk__in=candidates).update(
        status=RunStatus.RUNNING, lease_until=lease
    )
    taken = list(
        FlowRun.objects.filter(pk__in=candidates, status=RunStatus.RUNNING, lease_until=lease)
        .order_by("resume_at", "pk")
        .values_list("pk", flat=True)
    )
    workers = max(1, int(settings.Q_CLUSTER.get("workers") or 1))
    size = max(1, min(RESUME_CHUNK, math.ceil(len(taken) / workers)))
    queued = 0
    for first in range(0, len(taken), size):
        queued += _queue_chunk(taken[first : first + size], lease, now)
    return queued


def _queue_chunk(chunk: list[int], lease, now) -> int:
    """Queue the task that carries ``chunk`` (runs taken under ``lease``); how many were
    queued. A broker that refuses it gives them back to waiting: the next pass tries again."""
    from django_q.tasks import async_task

    try:
        async_task(
            RESUME_TASK,
            chunk,
            lease,
            task_name=f"flow-runs-{chunk[0]}-{len(chunk)}-{int(now.timestamp())}",
        )
    except Exception:
        logger.exception("could not queue the resumption of %s flow run(s)", len(chunk))
        _give_back(chunk, lease)
        return 0
    return len(chunk)


def start_later(flow: Flow, payload, *, trigger: str, trigger_ref: str) -> FlowRun:
    """Write the workflow's run and queue it for a worker; the caller does not wait for its
    steps (the REST API's ``"wait": false``). From then on the hub carries the run as it
    carries a delay's resumption: a transient error waits its backoff and the run resumes at
    that step, up to :data:`MAX_ATTEMPTS`. If the queue refuses it, the row stays due and the
    sweeper's next pass queues it. The same trigger finds its run again."""
    existing = _run_for(flow, trigger_ref)
    if existing is not None:
        return existing
    run, cancelled = _new_run(
        flow,
        payload,
        trigger=trigger,
        trigger_ref=trigger_ref,
        correlation_id=current_correlation_id() or new_correlation_id(),
        status=RunStatus.WAITING,
        resume_at=timezone.now(),
    )
    if not cancelled:
        _queue_now(run.pk, (RunStatus.WAITING,))
    run.refresh_from_db()
    return run


def _queue_now(pk: int, statuses) -> bool:
    """Take one run in one of ``statuses`` (one conditional write: running under a new lease,
    due at once) and queue its task; False when it was in none of them. If the queue refuses
    it, it goes back to waiting and the sweeper's next pass queues it."""
    now = timezone.now()
    lease = now + run_lease()
    taken = FlowRun.objects.filter(pk=pk, status__in=statuses).update(
        status=RunStatus.RUNNING, lease_until=lease, resume_at=now, finished_at=None
    )
    if taken:
        _queue_chunk([pk], lease, now)
    return bool(taken)


def _give_back(pks: list[int], lease) -> None:
    """Runs taken under ``lease`` that this task will not carry: due again at once."""
    FlowRun.objects.filter(pk__in=pks, status=RunStatus.RUNNING, lease_until=lease).update(
        status=RunStatus.WAITING,
        lease_until=None,  # their resume_at has passed: due at once
    )


def resume_runs(pks: list[int], lease=None, budget: float | None = None) -> str:
    """The task that carries a chunk of runs taken by :func:`resume_due`, one after the other.
    Past ``budget`` seconds (half the task timeout by default) it gives the rest back to the
    next pass rather than be killed by the cluster in the middle of a step."""
    if budget is None:
        budget = settings.Q_CLUSTER.get("timeout", 120) / 2
    deadline = time.monotonic() + budget
    outcomes: dict[str, int] = {}
    for position, pk in enumerate(pks):
        outcome = resume_run(pk, lease=lease)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if time.monotonic() > deadline and position + 1 < len(pks):
            _give_back(pks[position + 1 :], lease)
            outcomes["given back"] = len(pks) - position - 1
            break
    return ", ".join(f"{count} {outcome}" for outcome, count in outcomes.items())


def resume_run(pk: int, lease=None) -> str:
    """Carry one run taken by :func:`resume_due` under ``lease`` (or by a hand retry, or any
    running run when ``lease`` is None). A run re-taken since (its lease ran out and a later
    pass took it) is left to the later task."""
    run = FlowRun.objects.select_related("flow__connection").filter(pk=pk).first()
    if run is None or run.status != RunStatus.RUNNING:
        return "nothing to resume"
    held = {"lease_until": lease} if lease is not None else {}
    claimed = FlowRun.objects.filter(pk=pk, status=RunStatus.RUNNING, **held).update(
        lease_until=timezone.now() + run_lease(), attempts=F("attempts") + 1
    )
    if not claimed:
        return "nothing to resume"
    run.refresh_from_db()
    try:
        with bulkhead.hold(run.flow.connection):
            execute(run.flow, run, run.trigger_data)
    except ConnectionBusyError as busy:
        FlowRun.objects.filter(pk=pk, status=RunStatus.RUNNING).update(
            status=RunStatus.WAITING,
            resume_at=busy.retry_at or timezone.now() + timedelta(seconds=5),
        )
        return "connection busy: resumes shortly"
    except Exception as exc:  # recorded on the run and its step; it resumes after its backoff
        logger.info("flow run %s: %s", pk, type(exc).__name__)
    run.refresh_from_db()
    return run.status


def retry_by_hand(run: FlowRun) -> bool:
    """*Retry from the failed step*: the run resumes at its first step that did not succeed,
    carried by the hub from then on. False when the run cannot be retried (it succeeded, is
    running or was cancelled)."""
    if not run.flow.is_workflow:
        return False
    return _queue_now(run.pk, (RunStatus.FAILED, RunStatus.RETRYING, RunStatus.INTERRUPTED))


def cancel_runs(flow: Flow, key: str, *, by: str) -> int:
    """Cancel the pending steps of ``flow``'s runs whose correlation value is ``key``; returns
    how many runs. A step in flight ends as it ends; none starts after this. The cancellation
    is kept a day: a run with this key that starts later (its event arrived after the
    cancelling one) is cancelled before its first step."""
    if not key:
        return 0
    # kept first, for a run whose starting event is processed after this one (out of order)
    FlowCancellation.objects.update_or_create(
        flow=flow, key=key[:200], defaults={"cancelled_by": by[:300], "received_at": timezone.now()}
    )
    pks = FlowRun.objects.filter(flow=flow, cancel_key=key[:200], status__in=PENDING).values_list(
        "pk", flat=True
    )
    return sum(cancel(pk, by=by) for pk in list(pks))


def cancel(pk: int, *, by: str) -> bool:
    """Cancel one run's pending steps (a cancelling event, or a person on the run's page);
    False when the run was no longer pending."""
    now = timezone.now()
    if not FlowRun.objects.filter(pk=pk, status__in=PENDING).update(
        status=RunStatus.CANCELLED,
        cancelled_by=by[:300],
        finished_at=now,
        lease_until=None,
        error=gettext("cancelled by %(who)s") % {"who": by[:250]},
    ):
        return False
    FlowRunStep.objects.filter(
        run_id=pk, status__in=(StepStatus.WAITING, StepStatus.RETRYING)
    ).update(status=StepStatus.CANCELLED, finished_at=now)
    logger.info("flow run %s cancelled", pk)
    return True
