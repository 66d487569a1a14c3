"""Per-minute rollups of calls and events, so that the dashboard, the rules and ``/metrics``
never scan the raw tables.

Each pass recomputes the minutes of the last ``HUB_ROLLUP_RECOMPUTE_MINUTES`` from the rows
(an attempt's row is written when it ends, so a slow call lands in its minute late) with one
grouped query per table over an indexed time range. Minutes older than that become *final*:
their counts are added once to the running totals that ``/metrics`` exposes as counters, so a
counter never goes down when old rollups are compacted to hours or purged.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncMinute
from django.utils import timezone

from connectors.models import ApiCall, ErrorKind
from monitoring.models import (
    HOUR,
    LATENCY_BUCKETS_MS,
    MINUTE,
    CallRollup,
    EventRollup,
    RunningTotal,
)
from webhooks.choices import AttemptOutcome
from webhooks.models import EventAttempt, WebhookEndpoint, WebhookEvent

__all__ = [
    "CALL_COUNTERS",
    "EVENT_COUNTERS",
    "add_counts",
    "bucket_index",
    "compact",
    "counts_of",
    "roll_up",
]

NOT_SENT_KINDS = (ErrorKind.CIRCUIT_OPEN, ErrorKind.BUSY, ErrorKind.BLOCKED_URL)
CALL_COUNTERS = (
    "calls",
    "ok",
    "client_errors",
    "rate_limited",
    "server_errors",
    "network_errors",
    "not_sent",
)
EVENT_COUNTERS = ("received", "processed", "unhandled", "retried", "failed", "refused")


def bucket_index(duration_ms: int) -> int:
    """The latency bucket of a duration: the first upper bound it does not exceed."""
    for index, bound in enumerate(LATENCY_BUCKETS_MS):
        if duration_ms <= bound:
            return index
    return len(LATENCY_BUCKETS_MS)


def counts_of(row) -> dict:
    """A rollup row's counts: its counters and, for calls, the duration sum and the latency
    histogram (a list, bucket by bucket)."""
    if isinstance(row, CallRollup):
        counts = {name: getattr(row, name) for name in (*CALL_COUNTERS, "duration_ms_sum")}
        counts["latency"] = list(row.latency or [0] * (len(LATENCY_BUCKETS_MS) + 1))
        return counts
    return {name: getattr(row, name) for name in EVENT_COUNTERS}


def add_counts(into: dict, counts: dict) -> dict:
    """Add ``counts`` to ``into`` (histograms bucket by bucket) and return ``into``: the one
    sum behind the running totals, the hour rows and the scrape."""
    for name, value in counts.items():
        if isinstance(value, list):
            old = into.get(name) or [0] * len(value)
            into[name] = [a + b for a, b in zip(old, value, strict=True)]
        else:
            into[name] = into.get(name, 0) + value
    return into


def _minute(value: datetime) -> datetime:
    return value.replace(second=0, microsecond=0)


def _call_counts(since: datetime, until: datetime) -> dict[tuple[int, datetime], dict]:
    sent = ~Q(error_kind__in=NOT_SENT_KINDS)
    rows = (
        ApiCall.objects.filter(created_at__gte=since, created_at__lt=until)
        .annotate(minute=TruncMinute("created_at"))
        .values("connection_id", "minute")
        .annotate(
            calls=Count("id"),
            not_sent=Count("id", filter=~sent),
            ok=Count("id", filter=sent & Q(status_code__lt=400)),
            client_errors=Count(
                "id",
                filter=sent & Q(status_code__gte=400, status_code__lt=500) & ~Q(status_code=429),
            ),
            rate_limited=Count("id", filter=sent & Q(status_code=429)),
            server_errors=Count("id", filter=sent & Q(status_code__gte=500)),
            network_errors=Count("id", filter=sent & Q(status_code__isnull=True)),
            duration_ms_sum=Sum("duration_ms", filter=sent),
            **{
                f"b{i}": Count("id", filter=sent & _bucket_filter(i))
                for i in range(len(LATENCY_BUCKETS_MS) + 1)
            },
        )
        .order_by()
    )
    out = {}
    for row in rows:
        latency = [row.pop(f"b{i}") for i in range(len(LATENCY_BUCKETS_MS) + 1)]
        key = (row.pop("connection_id"), row.pop("minute"))
        row["duration_ms_sum"] = row["duration_ms_sum"] or 0
        row["latency"] = latency
        out[key] = row
    return out


def _bucket_filter(index: int) -> Q:
    upper = LATENCY_BUCKETS_MS[index] if index < len(LATENCY_BUCKETS_MS) else None
    lower = LATENCY_BUCKETS_MS[index - 1] if index > 0 else None
    condition = Q()
    if lower is not None:
        condition &= Q(duration_ms__gt=lower)
    if upper is not None:
        condition &= Q(duration_ms__lte=upper)
    return condition


def _event_counts(since: datetime, until: datetime) -> dict[tuple[int, datetime], dict]:
    out: dict[tuple[int, datetime], dict] = {}
    received = (
        WebhookEvent.objects.filter(received_at__gte=since, received_at__lt=until)
        .annotate(minute=TruncMinute("received_at"))
        .values("endpoint_id", "minute")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in received:
        out.setdefault((row["endpoint_id"], row["minute"]), {})["received"] = row["n"]
    failed = [AttemptOutcome.FAILED, AttemptOutcome.DEAD, AttemptOutcome.LOST]
    attempts = (
        EventAttempt.objects.filter(started_at__gte=since, started_at__lt=until)
        .annotate(minute=TruncMinute("started_at"))
        .values("event__endpoint_id", "minute")
        .annotate(
            processed=Count("id", filter=Q(outcome=AttemptOutcome.PROCESSED)),
            unhandled=Count("id", filter=Q(outcome=AttemptOutcome.UNHANDLED)),
            retried=Count("id", filter=Q(outcome=AttemptOutcome.RETRY)),
            failed=Count("id", filter=Q(outcome__in=failed)),
        )
        .order_by()
    )
    for row in attempts:
        counts = out.setdefault((row.pop("event__endpoint_id"), row.pop("minute")), {})
        counts.update(row)
    return out


def _refusals(now: datetime) -> dict[tuple[int, datetime], dict]:
    """Refusals have no row (a refused delivery stores nothing): the endpoint's counter is
    read each pass and its growth since the last pass is put in the current minute."""
    out = {}
    minute = _minute(now)
    counters = dict(WebhookEndpoint.objects.values_list("pk", "rejected_count"))
    keys = {f"endpoint:{pk}": pk for pk in counters}
    RunningTotal.objects.bulk_create([RunningTotal(key=key) for key in keys], ignore_conflicts=True)
    for total in RunningTotal.objects.select_for_update().filter(key__in=list(keys)):
        endpoint_id = keys[total.key]
        count = counters[endpoint_id]
        seen = total.data.get("refusal_counter")
        # none on the first pass, or when the counter was reset by hand
        grown = 0 if seen is None or count < seen else count - seen
        if seen != count:
            total.data["refusal_counter"] = count
            total.save(update_fields=["data", "updated_at"])
        if grown:
            out[(endpoint_id, minute)] = {"refused": grown}
    return out


def roll_up(now: datetime | None = None) -> None:
    """Recompute the recent minutes, then finalise the ones that left the window."""
    now = now or timezone.now()
    window = settings.HUB_ROLLUP_RECOMPUTE_MINUTES
    since = _minute(now) - timedelta(minutes=window)
    until = _minute(now) + timedelta(minutes=1)
    calls = _call_counts(since, until)
    events = _event_counts(since, until)
    with transaction.atomic():
        refusals = _refusals(now)
        # one read of the window's rows, then one bulk write of what changed (a pass costs a
        # few queries whatever the number of connections)
        existing_calls = {
            (r.connection_id, r.start): r
            for r in CallRollup.objects.select_for_update().filter(
                resolution=MINUTE, start__gte=since
            )
        }
        new, changed = [], []
        for (connection_id, minute), counts in calls.items():
            row = existing_calls.get((connection_id, minute))
            if row is None:
                new.append(
                    CallRollup(
                        connection_id=connection_id, start=minute, resolution=MINUTE, **counts
                    )
                )
            elif any(getattr(row, name) != value for name, value in counts.items()):
                for name, value in counts.items():
                    setattr(row, name, value)
                changed.append(row)
        CallRollup.objects.bulk_create(new, batch_size=500)
        CallRollup.objects.bulk_update(
            changed, [*CALL_COUNTERS, "duration_ms_sum", "latency"], batch_size=500
        )
        existing = {
            (r.endpoint_id, r.start): r
            for r in EventRollup.objects.select_for_update().filter(
                resolution=MINUTE, start__gte=since
            )
        }
        new, changed = [], []
        for key in set(events) | set(refusals):
            counts = {name: 0 for name in EVENT_COUNTERS if name != "refused"}
            counts.update(events.get(key, {}))
            counts["refused"] = refusals.get(key, {}).get("refused", 0)
            row = existing.get(key)
            if row is None:
                new.append(
                    EventRollup(endpoint_id=key[0], start=key[1], resolution=MINUTE, **counts)
                )
                continue
            # refusals are counted as they grow (their counter has no history to recount)
            counts["refused"] += row.refused
            if any(getattr(row, name) != value for name, value in counts.items()):
                for name, value in counts.items():
                    setattr(row, name, value)
                changed.append(row)
        EventRollup.objects.bulk_create(new, batch_size=500)
        EventRollup.objects.bulk_update(changed, list(EVENT_COUNTERS), batch_size=500)
    _finalise(since)


def _finalise(before: datetime) -> None:
    """Add the counts of the minutes now out of the window to the running totals, once."""
    with transaction.atomic():
        calls = list(
            CallRollup.objects.select_for_update()
            .filter(resolution=MINUTE, final=False, start__lt=before)
            .order_by("pk")
        )
        events = list(
            EventRollup.objects.select_for_update()
            .filter(resolution=MINUTE, final=False, start__lt=before)
            .order_by("pk")
        )
        totals: dict[str, dict] = {}
        for row in calls:
            add_counts(totals.setdefault(f"connection:{row.connection_id}", {}), counts_of(row))
        for row in events:
            add_counts(totals.setdefault(f"endpoint:{row.endpoint_id}", {}), counts_of(row))
        RunningTotal.objects.bulk_create(
            [RunningTotal(key=key) for key in totals], ignore_conflicts=True
        )
        rows = list(RunningTotal.objects.select_for_update().filter(key__in=list(totals)))
        for total in rows:
            add_counts(total.data, totals[total.key])
        RunningTotal.objects.bulk_update(rows, ["data"], batch_size=500)
        CallRollup.objects.filter(pk__in=[r.pk for r in calls]).update(final=True)
        EventRollup.objects.filter(pk__in=[r.pk for r in events]).update(final=True)


def compact(now: datetime | None = None) -> None:
    """Fold final minute rows older than ``HUB_ROLLUP_MINUTE_DAYS`` into hour rows, and delete
    hour rows older than ``HUB_ROLLUP_HOUR_DAYS``. Bounded per pass, like the purges."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.HUB_ROLLUP_MINUTE_DAYS)
    for model, owner in ((CallRollup, "connection_id"), (EventRollup, "endpoint_id")):
        rows = list(
            model.objects.filter(resolution=MINUTE, final=True, start__lt=cutoff).order_by(
                "start", "pk"
            )[: settings.HUB_PURGE_MAX_ROWS_PER_PASS]
        )
        hours: dict[tuple[int, datetime], dict] = {}
        for row in rows:
            hour = row.start.replace(minute=0)
            add_counts(hours.setdefault((getattr(row, owner), hour), {}), counts_of(row))
        with transaction.atomic():
            for (owner_id, hour), added in hours.items():
                row, _ = model.objects.select_for_update().get_or_create(
                    **{owner: owner_id}, resolution=HOUR, start=hour, defaults={"final": True}
                )
                for name, value in add_counts(counts_of(row), added).items():
                    setattr(row, name, value)
                row.save()
            model.objects.filter(pk__in=[r.pk for r in rows]).delete()
        model.objects.filter(
            resolution=HOUR, start__lt=now - timedelta(days=settings.HUB_ROLLUP_HOUR_DAYS)
        ).delete()
