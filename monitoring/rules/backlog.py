"""The backlog: events waiting to be processed, and the age of the oldest. A stuck or too
slow queue shows here before anyone notices that nothing is happening."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from monitoring.choices import Severity
from monitoring.rules import Rule, fmt_duration, register
from webhooks.choices import EventStatus
from webhooks.models import WebhookEvent

PENDING = (EventStatus.RECEIVED, EventStatus.PROCESSING, EventStatus.RETRYING)


def backlog(now, cap: int = 100_000) -> tuple[int, float]:
    """(events pending, capped; seconds since the oldest due one arrived)."""
    pending = WebhookEvent.objects.filter(status__in=PENDING)
    count = pending.order_by().values("pk")[:cap].count()
    oldest = (
        WebhookEvent.objects.filter(status=EventStatus.RECEIVED)
        .order_by("received_at")
        .values_list("received_at", flat=True)
        .first()
    )
    due = (
        WebhookEvent.objects.filter(status=EventStatus.RETRYING, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )
    ages = [(now - t).total_seconds() for t in (oldest, due) if t is not None]
    return count, max(ages, default=0.0)


@register
class Backlog(Rule):
    key = "backlog"
    title = _("Backlog")
    defaults = {"max_age_minutes": 10, "max_pending": 1000}

    def evaluate(self, ctx):
        params = ctx.params(self)
        if params is None:
            return []
        count, age = backlog(ctx.now)
        too_old = age >= params["max_age_minutes"] * 60
        too_many = count >= params["max_pending"]
        if not (too_old or too_many):
            return []
        return [
            self.hub_signal(
                severity=Severity.CRITICAL if too_old else Severity.WARNING,
                summary=_(
                    "%(count)s event(s) wait to be processed; the oldest due one has waited %(age)s"
                )
                % {"count": count, "age": fmt_duration(age)},
                advice=_(
                    "Check that the workers run (manage.py monitor status, /ready/) and are "
                    "not all waiting for a slow partner; start more workers (Q_WORKERS) or more "
                    "machines if the volume grew."
                ),
                details={"pending": count, "oldest_seconds": int(age)},
            )
        ]
