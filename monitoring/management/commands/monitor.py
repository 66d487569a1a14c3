"""``manage.py monitor status | evaluate | test-channel NAME``: monitoring from a terminal."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.translation import gettext as _

from connectors.models import Connection
from monitoring.choices import ACTIVE_STATES, TargetType
from monitoring.models import Channel, Incident
from monitoring.rules import fmt_duration, fmt_time
from monitoring.rules.backlog import backlog
from monitoring.rules.hub import heartbeat_age
from monitoring.services.health import health_by_target
from monitoring.services.incidents import run_pass
from monitoring.services.notify import send_test


class Command(BaseCommand):
    help = _(
        "Monitoring: the incidents and health (status), one pass now (evaluate), or a test "
        "message to a channel (test-channel NAME)."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("status", help=_("Connections' health, open incidents, workers, backlog."))
        sub.add_parser("evaluate", help=_("Run one monitoring pass now (for an outside cron)."))
        test = sub.add_parser("test-channel", help=_("Send a test message to a channel."))
        test.add_argument("name", help=_("The channel's slug."))

    def handle(self, *args, action, **options):
        getattr(self, action.replace("-", "_"))(**options)

    def status(self, **options):
        now = timezone.now()
        beat = heartbeat_age()
        pending, age = backlog(now)
        self.stdout.write(
            "Workers: "
            + ("no heartbeat yet" if beat is None else f"last heartbeat {fmt_duration(beat)} ago")
        )
        self.stdout.write(
            _("Backlog: %(pending)s pending, oldest %(age)s")
            % {"pending": pending, "age": fmt_duration(age)}
        )
        connections = list(Connection.objects.order_by("slug"))
        health = health_by_target(TargetType.CONNECTION, connections)
        self.stdout.write(_("\nConnections:"))
        for connection in connections:
            state = health[connection.pk]
            self.stdout.write(f"  {connection.slug:30} {state.label:26} {state.reason}")
        incidents = Incident.objects.filter(state__in=ACTIVE_STATES).order_by("-opened_at")
        self.stdout.write(_("\nOpen incidents: %(count)s") % {"count": incidents.count()})
        for incident in incidents[:50]:
            self.stdout.write(
                _("  #%(pk)s [%(severity)s] %(summary)s (since %(opened_at)s, %(state)s)")
                % {
                    "pk": incident.pk,
                    "severity": incident.severity,
                    "summary": incident.summary,
                    "opened_at": fmt_time(incident.opened_at),
                    "state": incident.get_state_display(),
                }
            )

    def evaluate(self, **options):
        report = run_pass()
        self.stdout.write(
            f"{report.signals} signal(s); {len(report.changes)} change(s)"
            + (
                f"; rules that failed: {', '.join(report.failed_rules)}"
                if report.failed_rules
                else ""
            )
        )

    def test_channel(self, name, **options):
        try:
            channel = Channel.objects.get(slug=name)
        except Channel.DoesNotExist:
            known = ", ".join(Channel.objects.values_list("slug", flat=True)) or "none"
            raise CommandError(
                _('no channel "%(name)s" (known: %(known)s)') % {"name": name, "known": known}
            ) from None
        notification = send_test(channel)
        if notification.status != "sent":
            raise CommandError(
                _("%(slug)s: not sent: %(error)s")
                % {"slug": channel.slug, "error": notification.error}
            )
        self.stdout.write(self.style.SUCCESS(_("%(slug)s: test sent.") % {"slug": channel.slug}))
