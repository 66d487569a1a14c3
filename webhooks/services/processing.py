"""Processing events: claim with a lease, run the handlers, then processed, retry, fail or dead.

The event row is the truth; the queue only carries work. A worker claims an event with one
conditional UPDATE (only one worker can win it), runs what is registered for its type under the
event's correlation id, and records the attempt. The sweeper re-enqueues due retries and takes
back events whose lease expired (a killed worker), so nothing is lost.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from connectors.correlation import correlation_scope
from connectors.engine import budget, config_cache
from connectors.engine.errors import ConnectionBusyError, PermanentError, RetryableError
from webhooks.choices import AttemptOutcome, EventStatus, Redaction
from webhooks.handlers import NOT_HANDLED, HandlerPermanentError, ParsedEvent, handlers_for
from webhooks.models import EventAttempt, WebhookEndpoint, WebhookEvent
from webhooks.services.queue import enqueue_processing

__all__ = [
    "claim",
    "drop_old_bodies",
    "mark_resolved",
    "process_event",
    "purge_old_events",
    "replay",
    "retry_now",
    "retry_schedule",
    "sweep",
]

logger = logging.getLogger("webhooks.processing")

CLAIMABLE = (EventStatus.RECEIVED, EventStatus.RETRYING)


def retry_schedule() -> list[int]:
    return list(settings.HUB_WEBHOOK_RETRY_SCHEDULE)


def lease_seconds() -> int:
    return int(settings.HUB_WEBHOOK_LEASE_SECONDS)


def claim(pk: int) -> WebhookEvent | None:
    """Take the event for processing if it is due and nobody holds it; None otherwise.

    One conditional UPDATE decides (only one worker can win it), then the claimed row is read.
    """
    now = timezone.now()
    won = (
        WebhookEvent.objects.filter(pk=pk, status__in=CLAIMABLE, redaction="")
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .update(
            status=EventStatus.PROCESSING,
            lease_until=now + timedelta(seconds=lease_seconds()),
            attempts=F("attempts") + 1,
        )
    )
    return WebhookEvent.objects.get(pk=pk) if won else None


def _endpoint_slug(endpoint_id: int) -> str:
    """Endpoint slugs per process (an endpoint's save bumps the configuration generation)."""
    config_cache.current_generation(max_age=1.0)
    return config_cache.cached_value(
        "webhook-endpoint-slug",
        endpoint_id,
        lambda: WebhookEndpoint.objects.values_list("slug", flat=True).get(pk=endpoint_id),
    )


def _next_delay(attempts: int) -> float | None:
    schedule = retry_schedule()
    if attempts > len(schedule):
        return None
    base = schedule[attempts - 1]
    return base * random.uniform(0.8, 1.2)  # noqa: S311 - jitter spreads a burst of retries


def _finish(event: WebhookEvent, outcome: str, error: str, started: float, **fields) -> None:
    duration = int((time.monotonic() - started) * 1000)
    # Two autocommit statements, the attempt first: a worker that dies between them leaves the
    # event "processing" with its attempt recorded, and the sweeper takes it back when the lease
    # expires (handlers are idempotent) — never a finished event without its attempt.
    EventAttempt.objects.create(
        event=event,
        number=event.attempts,
        duration_ms=duration,
        outcome=outcome,
        error=error[:4000],
    )
    # Only the holder of the lease may finish it (a slow worker whose lease expired and whose
    # event was taken back must not overwrite the newer attempt's state).
    updated = WebhookEvent.objects.filter(
        pk=event.pk, status=EventStatus.PROCESSING, attempts=event.attempts
    ).update(
        lease_until=None,
        last_error=error[:4000],
        **fields,
    )
    if not updated:
        logger.warning("event %s was taken back while attempt %s ran", event.pk, event.attempts)


def process_event(pk: int) -> str:
    """Process one event if it can be claimed; returns the outcome (or 'skipped')."""
    event = claim(pk)
    if event is None:
        return "skipped"
    started = time.monotonic()
    parsed = ParsedEvent(
        pk=event.pk,
        endpoint=_endpoint_slug(event.endpoint_id),
        event_id=event.event_id,
        event_type=event.event_type,
        payload=event.payload(),
        correlation_id=event.correlation_id,
        attempt=event.attempts,
    )
    try:
        # the handlers' calls share the task's time (never killed by the cluster's timeout)
        with correlation_scope(event.correlation_id), budget.task_budget():
            answers = [func(parsed) for func in handlers_for(parsed.endpoint, parsed.event_type)]
    except ConnectionBusyError as exc:
        # the connection's share of the workers is in use (a slow partner): no call was made;
        # back shortly, and the attempt is not counted against the event's retry schedule
        _finish(
            event,
            AttemptOutcome.WAITING,
            str(exc),
            started,
            status=EventStatus.RETRYING,
            next_attempt_at=exc.retry_at or timezone.now() + timedelta(seconds=3),
            attempts=F("attempts") - 1,
        )
        return AttemptOutcome.WAITING
    except (PermanentError, HandlerPermanentError) as exc:
        _finish(
            event,
            AttemptOutcome.FAILED,
            f"{type(exc).__name__}: {exc}",
            started,
            status=EventStatus.FAILED,
        )
        return AttemptOutcome.FAILED
    except Exception as exc:  # transient by default: retried, then dead-lettered
        retry_at = getattr(exc, "retry_at", None) if isinstance(exc, RetryableError) else None
        delay = _next_delay(event.attempts)
        error = f"{type(exc).__name__}: {exc}"
        if delay is None:
            _finish(
                event,
                AttemptOutcome.DEAD,
                error,
                started,
                status=EventStatus.DEAD,
                next_attempt_at=None,
            )
            logger.error(
                "webhook event %s is dead after %s attempts: %s",
                event.pk,
                event.attempts,
                error,
                extra={"correlation_id": event.correlation_id},
            )
            return AttemptOutcome.DEAD
        when = timezone.now() + timedelta(seconds=delay)
        if retry_at is not None and retry_at > when:
            when = retry_at  # the partner said when; do not come back earlier
        _finish(
            event,
            AttemptOutcome.RETRY,
            error,
            started,
            status=EventStatus.RETRYING,
            next_attempt_at=when,
        )
        return AttemptOutcome.RETRY
    handled = any(answer != NOT_HANDLED for answer in answers)
    _finish(
        event,
        AttemptOutcome.PROCESSED if handled else AttemptOutcome.UNHANDLED,
        "" if handled else f"no handler and no flow for {parsed.event_type or 'this event'}",
        started,
        status=EventStatus.PROCESSED if handled else EventStatus.UNHANDLED,
        processed_at=timezone.now(),
        next_attempt_at=None,
    )
    return AttemptOutcome.PROCESSED if handled else AttemptOutcome.UNHANDLED


def sweep(*, batch_size: int = 500, requeue_after: int = 60) -> dict[str, int]:
    """Take back events whose lease expired, and enqueue due work that no task carries; at most
    ``batch_size`` of each per pass.

    Safe to run from several processes at once: each event is taken back, or queued, by a
    conditional UPDATE that only one sweeper can win (the selection itself locks nothing: it
    only proposes candidates).
    """
    now = timezone.now()
    lost = 0
    expired = Q(status=EventStatus.PROCESSING, lease_until__lt=now)
    for pk, attempts in _candidates(expired, batch_size):
        if WebhookEvent.objects.filter(expired, pk=pk).update(
            status=EventStatus.RETRYING,
            next_attempt_at=now,
            lease_until=None,
            last_error="worker lost (lease expired); taken back by the sweeper",
        ):
            EventAttempt.objects.create(
                event_id=pk,
                number=attempts,
                outcome=AttemptOutcome.LOST,
                error="worker lost (lease expired)",
            )
            lost += 1
    stale = now - timedelta(seconds=requeue_after)
    due = (
        Q(status__in=CLAIMABLE)
        & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        & (
            Q(enqueued_at__isnull=True)
            | Q(enqueued_at__lt=stale)
            | Q(status=EventStatus.RETRYING, enqueued_at__lt=F("next_attempt_at"))
        )
    )
    enqueued = 0
    for pk, _attempts in _candidates(due, batch_size):
        # once enqueued_at is now, the event is no longer "due without a task": a second
        # sweeper's UPDATE matches nothing
        if WebhookEvent.objects.filter(due, pk=pk).update(enqueued_at=now):
            enqueue_processing(pk)
            enqueued += 1
    result = {"lost": lost, "enqueued": enqueued}
    for name, func in SWEEP_HOOKS:
        result[name] = func()
    return result


# Other apps' periodic take-backs, run by every sweep pass (the flows app marks runs whose
# worker was lost as interrupted): (name in the result, function returning a count).
SWEEP_HOOKS: list[tuple[str, Callable[[], int]]] = []


def _candidates(condition: Q, batch_size: int) -> list[tuple[int, int]]:
    return list(
        WebhookEvent.objects.filter(condition)
        .order_by("pk")
        .values_list("pk", "attempts")[:batch_size]
    )


FINAL_STATES = (
    EventStatus.PROCESSED,
    EventStatus.UNHANDLED,
    EventStatus.RESOLVED,
    EventStatus.REJECTED,
    EventStatus.DEAD,
    EventStatus.FAILED,
)


def purge_old_events(batch_size: int | None = None) -> int:
    """Delete events in a final state older than their connection's retention (GDPR: the
    connection's ``retention_days``), with their attempts; at most a pass's budget of rows
    (connectors.retention). Events still to be processed are never purged."""
    from connectors.retention import Budget, delete_in_batches, per_connection_cutoffs

    cutoffs, budget = dict(per_connection_cutoffs()), Budget()
    return sum(
        delete_in_batches(  # by endpoint: the index on (endpoint, received_at) finds them
            WebhookEvent.objects.filter(
                endpoint_id=endpoint_id,
                received_at__lt=cutoffs[connection_id],
                status__in=FINAL_STATES,
            ),
            batch_size,
            budget=budget,
        )
        for endpoint_id, connection_id in WebhookEndpoint.objects.values_list("pk", "connection")
    )


DROPPABLE = (
    EventStatus.PROCESSED,
    EventStatus.UNHANDLED,
    EventStatus.RESOLVED,
    EventStatus.REJECTED,
)
REPLAYABLE = (EventStatus.PROCESSED, EventStatus.UNHANDLED, EventStatus.RESOLVED)
RETRYABLE = (EventStatus.FAILED, EventStatus.DEAD, EventStatus.RETRYING, EventStatus.RECEIVED)


def drop_old_bodies(batch_size: int | None = None) -> int:
    """Payload retention: the events of a connection with ``payload_retention_days`` lose their
    body and headers once done (processed, resolved, rejected) and older than that; the row,
    its ids, hashes, statuses and attempts stay until the row retention. Returns the bodies
    dropped.

    Each endpoint remembers how far it went (``bodies_dropped_before``), so a pass reads only
    the events received since, in batches through the (endpoint, received_at) index, within a
    pass's budget. Events still waiting for a person keep their body: it is what a retry
    needs; once resolved, it goes with the row."""
    from connectors.retention import Budget

    batch_size = batch_size or settings.HUB_PURGE_BATCH_ROWS
    budget, now, dropped = Budget(), timezone.now(), 0
    endpoints = WebhookEndpoint.objects.filter(
        connection__payload_retention_days__isnull=False
    ).values_list("pk", "bodies_dropped_before", "connection__payload_retention_days")
    for endpoint_id, since, days in endpoints:
        cutoff = now - timedelta(days=days)
        window = WebhookEvent.objects.filter(endpoint_id=endpoint_id, received_at__lt=cutoff)
        if since is not None:
            window = window.filter(received_at__gte=since)
        reached, after = since, None
        while budget.left > 0:
            page = (
                window
                if after is None
                else window.filter(
                    Q(received_at__gt=after[0]) | Q(received_at=after[0], pk__gt=after[1])
                )
            )
            size = min(batch_size, budget.left)
            batch = list(
                page.order_by("received_at", "pk").values_list(
                    "pk", "received_at", "status", "redaction"
                )[:size]
            )
            budget.spend(len(batch))
            ids = [
                pk for pk, _at, status, redaction in batch if status in DROPPABLE and not redaction
            ]
            if ids:
                dropped += WebhookEvent.objects.filter(pk__in=ids, redaction="").update(
                    body=b"", headers={}, redaction=Redaction.RETENTION, redacted_at=now
                )
            if len(batch) < size:
                reached = cutoff  # the whole window is done: the next pass starts here
                break
            after = (batch[-1][1], batch[-1][0])  # (received_at, pk) of the last one read
            reached = after[0]
        if reached != since:
            WebhookEndpoint.objects.filter(pk=endpoint_id).update(bodies_dropped_before=reached)
    return dropped


def retry_now(event: WebhookEvent, *, actor=None) -> bool:
    """Operator's "Retry now": a failed, dead or retrying event is due at once and queued."""
    now = timezone.now()
    updated = WebhookEvent.objects.filter(
        pk=event.pk,
        redaction="",  # a dropped or erased body cannot be processed again
        status__in=RETRYABLE,
    ).update(status=EventStatus.RETRYING, next_attempt_at=now, enqueued_at=now)
    if updated:
        transaction.on_commit(lambda: enqueue_processing(event.pk))
        logger.info("event %s retried by %s", event.pk, actor or "system")
    return bool(updated)


def replay(event: WebhookEvent, *, actor=None) -> bool:
    """Operator's "Replay": run a processed, unhandled or resolved event again (an unhandled
    one once a flow or handler for it exists). Effects are idempotent
    (idempotency keys, lookups before creates), so this changes nothing already applied."""
    now = timezone.now()
    updated = WebhookEvent.objects.filter(pk=event.pk, status__in=REPLAYABLE, redaction="").update(
        status=EventStatus.RETRYING, next_attempt_at=now, enqueued_at=now
    )
    if updated:
        transaction.on_commit(lambda: enqueue_processing(event.pk))
    return bool(updated)


def mark_resolved(event: WebhookEvent, *, reason: str, actor=None) -> bool:
    """Operator's "Mark resolved": a person dealt with it; no more attempts."""
    who = actor.get_username() if actor is not None else "system"
    note = f"{timezone.now():%Y-%m-%d %H:%M} {who}: {reason}".strip()
    return bool(
        WebhookEvent.objects.filter(pk=event.pk)
        .exclude(status__in=[EventStatus.PROCESSING, EventStatus.PROCESSED, EventStatus.UNHANDLED])
        .update(status=EventStatus.RESOLVED, next_attempt_at=None, resolution_note=note)
    )
