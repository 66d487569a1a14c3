"""``manage.py webhooks retry …`` and ``manage.py webhooks sweep [--loop]``."""

import signal
import time
from datetime import datetime
from datetime import time as dtime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _

from webhooks.choices import EventStatus
from webhooks.models import WebhookEvent
from webhooks.services import processing

RETRYABLE = [EventStatus.FAILED, EventStatus.DEAD, EventStatus.RETRYING]


def _since(value: str) -> datetime:
    parsed = parse_datetime(value)
    if parsed is None:
        day = parse_date(value)
        if day is None:
            raise CommandError(
                _("--since %(value)s: give a date (2026-11-29) or a datetime.")
                % {"value": f"{value!r}"}
            )
        parsed = datetime.combine(day, dtime.min)
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed)
    return parsed


class Command(BaseCommand):
    help = _("Retry webhook events, or sweep (due retries and expired leases).")

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        retry = sub.add_parser("retry", help=_("Queue failed/dead/retrying events again, now."))
        retry.add_argument(
            "--status",
            choices=[s.value for s in RETRYABLE],
            default=None,
            help=_("Only events in this status (default: failed and dead)."),
        )
        retry.add_argument("--endpoint", help=_("Only this endpoint slug."))
        retry.add_argument("--since", help=_("Only events received since this date or datetime."))
        retry.add_argument("--dry-run", action="store_true", help=_("Count, change nothing."))
        sweep = sub.add_parser("sweep", help=_("Enqueue due retries, take back expired leases."))
        sweep.add_argument("--loop", action="store_true", help=_("Keep sweeping until stopped."))
        sweep.add_argument("--every", type=float, default=5.0, help=_("Seconds between sweeps."))

    def handle(self, *args, action, **options):
        if action == "retry":
            self._retry(**options)
        else:
            self._sweep(**options)

    def _retry(self, status, endpoint, since, dry_run, **options):
        events = WebhookEvent.objects.filter(
            status__in=[status] if status else [EventStatus.FAILED, EventStatus.DEAD]
        )
        if endpoint:
            events = events.filter(endpoint__slug=endpoint)
        if since:
            events = events.filter(received_at__gte=_since(since))
        if dry_run:
            self.stdout.write(_("%(count)s event(s) would be retried.") % {"count": events.count()})
            return
        count = sum(processing.retry_now(event) for event in events.iterator())
        self.stdout.write(_("%(count)s event(s) queued for retry.") % {"count": count})

    def _sweep(self, loop, every, **options):
        if every <= 0:
            raise CommandError(_("--every must be positive."))
        stopping = []
        if loop:
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *a: stopping.append(True))
        while True:
            result = processing.sweep()
            if any(result.values()) or not loop:
                others = "".join(
                    f", {count} {name.replace('_', ' ')}"
                    for name, count in result.items()
                    if name not in ("lost", "enqueued")
                )
                self.stdout.write(
                    _("%(lost)s lost event(s) taken back, %(enqueued)s enqueued%(others)s.")
                    % {"lost": result["lost"], "enqueued": result["enqueued"], "others": others}
                )
            if not loop:
                return
            deadline = time.monotonic() + every
            while not stopping and time.monotonic() < deadline:
                time.sleep(0.2)
            if stopping:
                return
