"""Running a flow: condition → mapping → action (a call, or an upsert without duplicates).

Upsert, the way the brief asks ("identifiant stable, vérifier avant création, appels
idempotents"):

1. a short lock on (flow, match value), so two runs for the same person do not both create;
2. look the record up at the partner by the match key;
3. found: already equal on every mapped field → nothing sent ("unchanged"); otherwise update it;
4. not found: create it with an idempotency key derived from the flow and the trigger, sent as
   the partner's header and held in the local idempotency record. A retried or replayed event
   gets the same key, so even when a first attempt died after the partner answered, the
   partner (or the local record) replays the first create instead of making a second one.

Every run is a ``FlowRun``, written when it starts (``running``) and when it ends. Errors are
recorded, then raised to the caller: a ``MappingError`` or an engine ``PermanentError`` is
permanent; anything else is transient (the webhook retry rules apply).
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from connectors import hub
from connectors.correlation import correlation_scope, current_correlation_id, new_correlation_id
from connectors.engine import bulkhead, calllog, config_cache, idempotency
from connectors.engine.errors import PermanentError, RetryableError
from connectors.models import ApiCall, Connection
from flows.conditions import evaluate
from flows.mapping import MappingError, canonical, map_or_raise
from flows.models import (
    PLACEHOLDER,
    Flow,
    FlowRun,
    FlowRunStep,
    MappingRule,
    RunOutcome,
    RunStatus,
    StepStatus,
)
from flows.paths import MISSING, get_path, leaves

__all__ = ["RunResult", "mark_interrupted", "run_flow"]

logger = logging.getLogger("flows.runner")


class RunResult:
    """A finished run and the mapped data it sent (None when its condition did not hold)."""

    def __init__(self, run: FlowRun, data: dict | None):
        self.run = run
        self.data = data


def mapping_specs(mapping_id: int):
    """The mapping's rules, from the process cache while the configuration generation holds
    (a saved or deleted mapping or rule bumps it; seen by other processes within 0.5 s)."""
    config_cache.current_generation(max_age=0.5)
    return config_cache.cached_value(
        "flows.mapping",
        mapping_id,
        lambda: [r.spec() for r in MappingRule.objects.filter(mapping_id=mapping_id)],
    )


def _fill(template: str, data: dict, extra: dict | None = None) -> str:
    """A path template filled from the mapped data, each value URL-encoded."""

    def value(match: re.Match) -> str:
        name = match.group(1)
        found = (extra or {}).get(name, MISSING)
        if found is MISSING:
            found = get_path(data, name)
        if found is MISSING or found is None or isinstance(found, (dict, list)):
            raise MappingError([f'path "{template}": the field "{name}" has no value'])
        return quote(str(found), safe="")

    return PLACEHOLDER.sub(value, template)


def _key(flow: Flow, data: dict, variables: dict) -> str:
    def value(match: re.Match) -> str:
        name = match.group(1)
        if name.startswith("data."):
            found = get_path(data, name[5:])
            return "" if found is MISSING else str(found)
        if name not in variables:
            raise MappingError([f'idempotency key template: unknown variable "{name}"'])
        return str(variables[name])

    key = PLACEHOLDER.sub(value, flow.idempotency_key_template)
    if len(key) > 200:  # keep it within what partners accept; still unique per trigger
        key = key[:120] + ":" + hashlib.sha256(key.encode()).hexdigest()[:40]
    return key


@dataclass(frozen=True)
class Action:
    """What :func:`perform_action` does: a one-action flow's action, or a workflow's ``upsert``
    step. ``scope`` names whose upsert lock it takes (one flow, or one step of a workflow)."""

    scope: str
    connection: Connection
    method: str
    path: str
    is_upsert: bool = False
    match_key: str = ""
    lookup_path: str = ""
    lookup_results: str = "results"
    record_id_field: str = "id"
    update_method: str = "PATCH"
    update_path: str = ""

    @classmethod
    def of(cls, flow: Flow) -> Action:
        """A one-action flow's action, from its fields."""
        return cls(
            scope=str(flow.pk),
            connection=flow.connection,
            method=flow.method,
            path=flow.path,
            is_upsert=flow.is_upsert,
            match_key=flow.match_key,
            lookup_path=flow.lookup_path,
            lookup_results=flow.lookup_results,
            record_id_field=flow.record_id_field,
            update_method=flow.update_method,
            update_path=flow.update_path,
        )


def _already_equal(record, data: dict) -> bool:
    return isinstance(record, dict) and all(
        get_path(record, path) == value for path, value in leaves(data)
    )


def _lookup(action: Action, data: dict):
    try:
        response = hub.call(action.connection, "GET", _fill(action.lookup_path, data))
    except PermanentError as exc:
        if exc.status == 404:
            return None
        raise
    try:
        body = response.json() if response.content else None
    except ValueError:
        raise PermanentError(
            f"the lookup {action.lookup_path} answered something that is not JSON (check the "
            "flow's lookup path)",
            status=response.status,
            correlation_id=response.correlation_id,
        ) from None
    found = get_path(body, action.lookup_results) if action.lookup_results else body
    if found is MISSING or found is None:
        return None
    if isinstance(found, list):
        wanted = _comparable(get_path(data, action.match_key))
        for record in found:
            # a partner's search may be fuzzy: only a match on the key counts (text compared
            # without case or surrounding spaces: "Ada@X.com" is ada@x.com)
            value = get_path(record, action.match_key)
            if value is MISSING or _comparable(value) == wanted:
                return record
        return None
    return found if isinstance(found, dict) else None


def _comparable(value):
    return value.strip().casefold() if isinstance(value, str) else value


def _record_id(action: Action, record) -> str:
    found = get_path(record, action.record_id_field) if isinstance(record, dict) else MISSING
    return "" if found is MISSING or found is None else str(found)


def run_lease() -> timedelta:
    """How long a run's worker holds it. A run is made while an event (or a sync page, or a
    request) is processed, under a lease of this length: past it, its worker is taken for lost,
    as the event's is."""
    return timedelta(seconds=settings.HUB_WEBHOOK_LEASE_SECONDS)


class _UpsertLock:
    """A short lock per (flow, match value) in the shared cache (Redis or the database), held
    by one run (its value is the run's id).

    A run whose worker died leaves its lock behind; the next run (the event's retry) takes it
    over as soon as the holder's lease is gone, instead of waiting out the lock's lifetime.
    Only one taker wins a given dead holder (``cache.add`` of a takeover key)."""

    def __init__(self, action: Action, match_value, run: FlowRun):
        digest = hashlib.sha256(str(match_value).encode()).hexdigest()[:32]
        self.key = f"hub:flows:upsert:{action.scope}:{digest}"
        self.run = run

    def __enter__(self):
        ttl = int(run_lease().total_seconds()) + 30  # outlives a live holder's lease
        if cache.add(self.key, self.run.pk, ttl):
            return self
        holder = cache.get(self.key)
        if (
            holder is not None
            and _holder_is_gone(holder)
            and cache.add(f"{self.key}:takeover:{holder}", self.run.pk, ttl)
        ):
            cache.set(self.key, self.run.pk, ttl)
            logger.warning(
                "flow run %s took over the upsert lock of run %s (its worker was lost)",
                self.run.pk,
                holder,
                extra={"correlation_id": self.run.correlation_id},
            )
            return self
        raise RetryableError(
            "another run is upserting the same record right now; this one is retried shortly",
            retry_at=timezone.now() + timedelta(seconds=2),
        )

    def __exit__(self, *exc):
        # only our own lock: a run whose lease ran out may have had it taken over
        if cache.get(self.key) == self.run.pk:
            cache.delete(self.key)


def _holder_is_gone(holder) -> bool:
    """True when the run holding a lock is no longer running under a live lease."""
    return not FlowRun.objects.filter(
        pk=holder, status=RunStatus.RUNNING, lease_until__gte=timezone.now()
    ).exists()


def perform_action(action: Action, data: dict, key: str, run: FlowRun):
    """The action; returns (outcome, the partner's record id)."""
    if not action.is_upsert:
        use_key = key if action.method in ("POST", "PATCH", "PUT", "DELETE") else None
        body = data if action.method != "GET" else None
        return RunOutcome.CALLED, _record_id(action, _json(_send(action, data, body, use_key)))
    match_value = get_path(data, action.match_key)
    if match_value is MISSING or match_value in (None, ""):
        raise MappingError([f'match key "{action.match_key}" has no value in the mapped data'])
    with _UpsertLock(action, _comparable(match_value), run):
        record = _lookup(action, data)
        if record is not None:
            record_id = _record_id(action, record)
            if not record_id:
                raise PermanentError(
                    f'the lookup found a record without "{action.record_id_field}" (check the '
                    "flow's record id field)"
                )
            if _already_equal(record, data):
                return RunOutcome.UNCHANGED, record_id
            hub.call(
                action.connection,
                action.update_method,
                _fill(action.update_path, data, {"id": record_id}),
                json=data,
                idempotency_key=f"{key}:update:{record_id}:{canonical(data)[1][:16]}",
            )
            return RunOutcome.UPDATED, record_id
        return RunOutcome.CREATED, _record_id(action, _json(_send(action, data, data, key)))


def _send(action: Action, data: dict, body, key: str | None):
    """The action's own request: its method on its path filled from the mapped data."""
    return hub.call(
        action.connection, action.method, _fill(action.path, data), json=body, idempotency_key=key
    )


def _json(response):
    try:
        return response.json()
    except ValueError:
        return None


def run_flow(
    flow: Flow,
    payload,
    *,
    trigger: str,
    trigger_ref: str,
    event_id: int | None = None,
    variables: dict | None = None,
    correlation_id: str | None = None,
) -> RunResult:
    """Run ``flow`` on ``payload`` and record the run. Raises the run's error after recording
    it (``MappingError``/``PermanentError``: permanent; others: transient).

    The run's row is written when it starts (``running``, under a lease) and updated when it
    ends; each of its API calls is written as it ends, carrying the run's reference. A worker
    killed in between leaves the run and its calls in the console; the sweeper marks the run
    interrupted once its lease is gone (:func:`mark_interrupted`).

    Inside a worker, the run holds one slot of its connection's share of the workers
    (connectors.engine.bulkhead) from before its row is written: a busy connection raises
    ``ConnectionBusyError`` and no run is recorded (the event's attempt says it waited)."""
    with bulkhead.hold(flow.connection):
        if flow.is_workflow:
            from flows.services.workflow import run_steps

            return run_steps(
                flow,
                payload,
                trigger=trigger,
                trigger_ref=trigger_ref,
                event_id=event_id,
                correlation_id=correlation_id,
            )
        return _run_flow(flow, payload, trigger, trigger_ref, event_id, variables, correlation_id)


def _run_flow(flow, payload, trigger, trigger_ref, event_id, variables, correlation_id):
    correlation_id = correlation_id or current_correlation_id() or new_correlation_id()
    now = timezone.now()
    run = FlowRun.objects.create(
        flow=flow,
        trigger=trigger,
        trigger_ref=trigger_ref[:300],
        event_id=event_id,
        correlation_id=correlation_id,
        status=RunStatus.RUNNING,
        started_at=now,
        lease_until=now + run_lease(),
    )
    started = time.monotonic()

    def finish(status, **fields):
        run.status = status
        run.finished_at = timezone.now()
        run.duration_ms = int((time.monotonic() - started) * 1000)
        run.lease_until = None
        for name, value in fields.items():
            setattr(run, name, value)
        # the run's end is the truth even if a sweeper took it for lost meanwhile (a worker
        # slower than its lease): it did finish
        run.save(update_fields=["status", "finished_at", "duration_ms", "lease_until", *fields])

    with (
        correlation_scope(correlation_id),
        calllog.run_scope(run.calls_ref),
        idempotency.held_until(run.lease_until),
    ):
        try:
            holds, why = evaluate(flow.condition, payload)
            if not holds:
                finish(RunStatus.SKIPPED, error=f"condition not met: {why}")
                return RunResult(run, None)
            data = map_or_raise(mapping_specs(flow.mapping_id), payload).output
            key = _key(
                flow,
                data,
                {"flow": flow.slug, "trigger": trigger_ref, **(variables or {})},
            )
            outcome, record_id = perform_action(Action.of(flow), data, key, run)
        except (MappingError, PermanentError) as exc:
            finish(RunStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:4000])
            exc.flow_run = run
            raise
        except Exception as exc:
            finish(RunStatus.RETRYING, error=f"{type(exc).__name__}: {exc}"[:4000])
            exc.flow_run = run
            raise
        finish(RunStatus.SUCCEEDED, outcome=outcome, record_id=record_id[:200])
    return RunResult(run, data)


def mark_interrupted(batch_size: int = 500) -> int:
    """Mark runs whose worker was lost (still ``running`` past their lease) as interrupted,
    saying what they had done at the partner (methods and statuses, never paths or data).
    Their event is taken back and retried by the webhook sweeper, as today; a retried run
    resumes safely (lookups before creates, idempotency keys). Returns how many."""
    now = timezone.now()
    lost = list(
        FlowRun.objects.filter(status=RunStatus.RUNNING, lease_until__lt=now)
        .order_by("pk")
        .values_list("pk", flat=True)[:batch_size]
    )
    marked = 0
    for pk in lost:
        calls = list(
            ApiCall.objects.filter(run_ref=f"flow_run:{pk}")
            .order_by("created_at", "pk")
            .values_list("method", "status_code", "error_kind")
        )
        done = ", ".join(f"{m} → {status or kind or '?'}" for m, status, kind in calls[:20])
        summary = f"{len(calls)} call(s) made: {done}" if calls else "no call made"
        taken = FlowRun.objects.filter(pk=pk, status=RunStatus.RUNNING, lease_until__lt=now).update(
            status=RunStatus.INTERRUPTED,
            finished_at=now,
            lease_until=None,
            error=f"worker lost (lease expired) before the run ended; {summary}"[:4000],
        )
        if taken:  # a workflow's step in flight: it runs again when the run resumes
            FlowRunStep.objects.filter(run_id=pk, status=StepStatus.RUNNING).update(
                status=StepStatus.RETRYING, error="worker lost (lease expired) during the step"
            )
        marked += taken
    return marked
