"""Counting refused deliveries without a database write per refusal.

A flood of bad signatures (a partner that rotated its secret, someone probing) must not become
a flood of UPDATEs on one endpoint row: on the embedded SQLite default every one of them would
take the database-wide write lock that valid deliveries need. Refusals are counted in this
process's memory and added to the endpoint's row (``rejected_count``, the last reason and time)
by one UPDATE per endpoint, ``HUB_WEBHOOK_REFUSAL_FLUSH_SECONDS`` after the first refusal not
yet written (and at normal exit). The last few refusals themselves (time, kind, reason, sender
address) are kept in memory too, at most ``RECENT_REFUSALS`` per endpoint, and written with the
count: a flood costs one small insert and one trim per endpoint and flush. What a killed
process had not written yet is lost: these are counters for a person, not deliveries (a
refused delivery is never stored, by design).
"""

from __future__ import annotations

import atexit
import ipaddress
import logging
import os
import threading
from collections import deque

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connections, transaction
from django.db.models import F
from django.utils import timezone

from webhooks.models.endpoint import RECENT_REFUSALS

__all__ = ["counter"]

logger = logging.getLogger("webhooks.ingest")


class RefusalCounter:
    def __init__(self):
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # a forked worker counts its own
        atexit.register(self.flush)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        # endpoint pk → [count, last reason, last time, {kind: count}, deque of the last ones]
        self._pending: dict[int, list] = {}
        self._timer: threading.Timer | None = None

    def add(
        self, endpoint_pk: int, reason: str, kind: str = "other", source_ip: str | None = None
    ) -> None:
        with self._lock:
            entry = self._pending.setdefault(
                endpoint_pk, [0, "", None, {}, deque(maxlen=RECENT_REFUSALS)]
            )
            now = timezone.now()
            entry[0] += 1
            entry[1], entry[2] = reason[:200], now
            entry[3][kind] = entry[3].get(kind, 0) + 1
            entry[4].append((now, kind, reason[:200], _address(source_ip)))
            if self._timer is None:
                delay = float(settings.HUB_WEBHOOK_REFUSAL_FLUSH_SECONDS)
                self._timer = threading.Timer(delay, self._flush_from_timer)
                self._timer.daemon = True
                self._timer.start()

    def pending(self, endpoint_pk: int) -> int:
        """Refusals of an endpoint counted here and not written yet."""
        with self._lock:
            return self._pending.get(endpoint_pk, [0])[0]

    def discard(self) -> None:
        """Forget what was counted and not written (the test suite, between tests)."""
        with self._lock:
            self._pending = {}
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def flush(self) -> None:
        """Write what was counted: one UPDATE per endpoint."""
        with self._lock:
            pending, self._pending = self._pending, {}
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        from webhooks.models import EndpointRefusals, WebhookEndpoint

        for endpoint_pk, (count, reason, at, kinds, recent) in pending.items():
            try:
                WebhookEndpoint.objects.filter(pk=endpoint_pk).update(
                    rejected_count=F("rejected_count") + count,
                    last_rejection_reason=reason,
                    last_rejection_at=at,
                )
                for kind, n in kinds.items():
                    _add_by_kind(EndpointRefusals, endpoint_pk, kind, n)
                _keep_recent(endpoint_pk, recent)
            except DatabaseError:
                logger.exception(
                    "could not record %d refusal(s) of endpoint %s", count, endpoint_pk
                )

    def _flush_from_timer(self) -> None:
        try:
            self.flush()
        finally:
            connections.close_all()  # this timer thread's own connections


def _address(value: str | None) -> str | None:
    """The sender's address if it is one (a forwarded header may carry anything)."""
    try:
        return str(ipaddress.ip_address(value or ""))
    except ValueError:
        return None


def _keep_recent(endpoint_pk: int, recent) -> None:
    """Add the last refusals, then keep only the newest ``RECENT_REFUSALS`` of the endpoint."""
    from webhooks.models import RefusedDelivery

    RefusedDelivery.objects.bulk_create(
        RefusedDelivery(endpoint_id=endpoint_pk, at=at, kind=kind, reason=reason, source_ip=ip)
        for at, kind, reason, ip in recent
    )
    rows = RefusedDelivery.objects.filter(endpoint_id=endpoint_pk)
    newest = list(rows.order_by("-at", "-id").values_list("pk", flat=True)[:RECENT_REFUSALS])
    rows.exclude(pk__in=newest).delete()


def _add_by_kind(model, endpoint_pk: int, kind: str, n: int) -> None:
    """One UPDATE; the kind's row is created the first time (and by whoever wins a race)."""
    rows = model.objects.filter(endpoint_id=endpoint_pk, kind=kind)
    if rows.update(count=F("count") + n):
        return
    try:
        with transaction.atomic():
            model.objects.create(endpoint_id=endpoint_pk, kind=kind, count=n)
    except IntegrityError:  # another process created it meanwhile
        rows.update(count=F("count") + n)


counter = RefusalCounter()
