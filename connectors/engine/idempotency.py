"""Local idempotency records: a key used for one request produces its effect once.

``begin()`` claims (scope, key) with one INSERT under a unique constraint — the constraint
decides between two concurrent callers, not a read before the write. Then:

* completed, same request: the stored result is returned and the partner is not called again;
* same key, different request: ``IdempotencyMismatchError``;
* still in flight (another call holds it): ``IdempotencyConflictError``;
* failed, or in flight past its lease (the holder died): taken over with a conditional UPDATE,
  so only one caller wins.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, router, transaction
from django.utils import timezone

from connectors.engine.errors import IdempotencyConflictError, IdempotencyMismatchError
from connectors.models import IdempotencyRecord, IdempotencyState

__all__ = ["begin", "complete", "fail", "held_until", "purge_expired", "request_fingerprint"]

# Response headers worth replaying; everything else (cookies above all) is dropped.
STORED_HEADERS = ("Content-Type", "Location", "ETag", "Last-Modified")


def ttl() -> timedelta:
    return timedelta(seconds=settings.HUB_IDEMPOTENCY_TTL_SECONDS)


def request_fingerprint(method: str, path: str, params, body: bytes | None) -> str:
    digest = hashlib.sha256()
    digest.update(method.upper().encode())
    digest.update(b"\0" + path.encode())
    digest.update(b"\0" + json.dumps(sorted(params or []), default=str).encode())
    digest.update(b"\0" + (body or b""))
    return digest.hexdigest()


# The end of the lease of the run making the calls (a flow run), if any: an in-flight record
# is held no longer than its run, so that when a worker dies the run's retry can take the key
# over as soon as the run's lease is gone (the run's lock and its event are taken back then).
_held_until: ContextVar[datetime | None] = ContextVar("hub_idempotency_held_until", default=None)


@contextmanager
def held_until(deadline: datetime):
    """In-flight records claimed inside the block are held until ``deadline`` at most."""
    token = _held_until.set(deadline)
    try:
        yield
    finally:
        _held_until.reset(token)


def begin(scope: str, key: str, fingerprint: str, *, lease_seconds: float, correlation_id: str):
    """Claim the key. Returns ``(record, None)`` to go ahead, or ``(record, record)`` when a
    completed result must be replayed instead of calling."""
    now = timezone.now()
    lease = now + timedelta(seconds=lease_seconds)
    cap = _held_until.get()
    if cap is not None and cap < lease:
        lease = max(cap, now)
    fields = {
        "scope": scope,
        "key": key,
        "fingerprint": fingerprint,
        "locked_until": lease,
        "correlation_id": correlation_id,
        "expires_at": now + ttl(),
    }
    try:
        # committed before the create is sent (autocommit); inside a caller's transaction, a
        # savepoint, so that losing the race does not break that transaction
        in_transaction = transaction.get_connection(
            router.db_for_write(IdempotencyRecord)
        ).in_atomic_block
        with transaction.atomic() if in_transaction else contextlib.nullcontext():
            return IdempotencyRecord.objects.create(**fields), None
    except IntegrityError:
        pass
    record = IdempotencyRecord.objects.get(scope=scope, key=key)
    if record.fingerprint != fingerprint:
        raise IdempotencyMismatchError(
            f"Idempotency key {key!r} was already used for a different request "
            f"(first call's correlation id {record.correlation_id}). Use a new key for a new "
            "request.",
            correlation_id=correlation_id,
        )
    if record.state == IdempotencyState.COMPLETED:
        return record, record
    takeover = IdempotencyRecord.objects.filter(pk=record.pk, fingerprint=fingerprint).filter(
        # failed attempts may be tried again; an in-flight one only once its holder's lease ran out
        state=IdempotencyState.FAILED
    ) | IdempotencyRecord.objects.filter(
        pk=record.pk, state=IdempotencyState.IN_FLIGHT, locked_until__lt=now
    )
    if takeover.update(
        state=IdempotencyState.IN_FLIGHT,
        locked_until=lease,
        updated_at=now,
        expires_at=now + ttl(),
    ):
        record.refresh_from_db()
        return record, None
    raise IdempotencyConflictError(
        f"A call with idempotency key {key!r} is still in flight (correlation id "
        f"{record.correlation_id}); wait for it to finish.",
        correlation_id=correlation_id,
    )


def complete(record: IdempotencyRecord, status: int, headers, body: bytes) -> None:
    """Store the result; later calls with the same key get it without calling the partner."""
    kept = {name: headers[name] for name in STORED_HEADERS if name in headers}
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        state=IdempotencyState.COMPLETED,
        response_status=status,
        response_headers=kept,
        response_body=body,
        locked_until=None,
        updated_at=timezone.now(),
    )


def fail(record: IdempotencyRecord) -> None:
    """Release the key after a failure, so the same request may be tried again."""
    IdempotencyRecord.objects.filter(pk=record.pk, state=IdempotencyState.IN_FLIGHT).update(
        state=IdempotencyState.FAILED, locked_until=None, updated_at=timezone.now()
    )


def purge_expired() -> int:
    """Delete expired records by batches, at most a pass's budget (connectors.retention);
    returns how many."""
    from connectors.retention import delete_in_batches

    return delete_in_batches(IdempotencyRecord.objects.filter(expires_at__lt=timezone.now()))
