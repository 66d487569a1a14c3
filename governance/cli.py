"""``manage.py integrations diff SANDBOX PRODUCTION``: what differs between two connections of
one service, worst first; exits non-zero when something would break production."""

from __future__ import annotations

from django.core.management.base import CommandError
from django.utils.translation import gettext as _

from connectors.models import Connection
from governance.diff import compare


class DiffAction:
    help = "Compare a sandbox connection with its production twin (works in test, not in prod)."

    def add_arguments(self, parser):
        parser.add_argument("sandbox", help="The sandbox connection's slug.")
        parser.add_argument("production", help="The production connection's slug.")

    def handle(self, command, options):
        pair = []
        for slug in (options["sandbox"], options["production"]):
            try:
                pair.append(Connection.objects.get(slug=slug))
            except Connection.DoesNotExist:
                raise CommandError(_('no connection "%(slug)s"') % {"slug": slug}) from None
        differences = compare(*pair)
        if not differences:
            command.stdout.write(_("No difference found that could explain a failure."))
            return
        for d in differences:
            command.stdout.write(
                f"[{d.level}] {d.topic}: {d.sandbox or '-'} | {d.production or '-'}"
            )
            command.stdout.write(f"    {d.why}")
        errors = sum(d.level == "error" for d in differences)
        if errors:
            raise CommandError(
                _("%(errors)s difference(s) would break production.") % {"errors": errors}
            )
