"""``manage.py integrations export [FILE]``, ``integrations apply FILE [--dry-run]``, and the
actions other apps add (``integrations diff SANDBOX PRODUCTION``: governance)."""

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from flows import iac
from flows.commands import INTEGRATIONS_ACTIONS


class Command(BaseCommand):
    help = _(
        "Integrations as code: export connections, endpoints, mappings and flows as YAML "
        "(secrets as ${ENV_NAME} references), or apply such a file (all or nothing)."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        export = sub.add_parser("export", help=_("Write the configuration as YAML."))
        export.add_argument("file", nargs="?", help=_("Output file (default: standard output)."))
        apply = sub.add_parser("apply", help=_("Create or update what a YAML file describes."))
        apply.add_argument("file", help=_("The YAML file ('-' for standard input)."))
        apply.add_argument(
            "--dry-run",
            action="store_true",
            help=_("Validate and show the changes; write nothing."),
        )
        for name, extra in sorted(INTEGRATIONS_ACTIONS.items()):
            extra.add_arguments(sub.add_parser(name, help=extra.help))

    def handle(self, *args, action, **options):
        if action in INTEGRATIONS_ACTIONS:
            return INTEGRATIONS_ACTIONS[action].handle(self, options)
        if action == "export":
            text = iac.dump(iac.export_document())
            if options.get("file"):
                Path(options["file"]).write_text(text, encoding="utf-8")
                self.stderr.write(_("written to %(file)s") % {"file": options["file"]})
            else:
                self.stdout.write(text, ending="")
            return
        name = options["file"]
        try:
            text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(
                _("cannot read %(name)s: %(strerror)s") % {"name": name, "strerror": exc.strerror}
            ) from None
        try:
            report = iac.apply_document(iac.load(text), dry_run=options["dry_run"])
        except iac.InvalidDocument as exc:
            for error in exc.errors:
                self.stderr.write(f"{name}: {error}")
            raise CommandError(
                _("%(errors)s error(s); nothing was written.") % {"errors": len(exc.errors)}
            ) from None
        for line in report.changes:
            self.stdout.write(line)
        if options["dry_run"]:
            self.stdout.write(_("dry run: nothing was written."))
