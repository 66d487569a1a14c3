"""``manage.py deliverables [--out DIR] [--check]``: the deliverables from the live
configuration, written to DIR, or compared with the files there (a site's CI keeps its
documentation true)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from governance.deliverables import render_all, without_live


class Command(BaseCommand):
    help = _(
        "Write the deliverables (flow diagram, mapping sheet, secrets inventory, "
        "troubleshooting guide, processing register) as Markdown, or --check them."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--out", default="deliverables", help=_("The folder (default: ./deliverables).")
        )
        parser.add_argument(
            "--check",
            action="store_true",
            help=_(
                "Write nothing; fail when the files in --out differ from the configuration "
                "(the live state of the troubleshooting guide aside)."
            ),
        )

    def handle(self, *args, out, check, **options):
        folder = Path(out)
        rendered = render_all()
        if check:
            drift = []
            for name, text in rendered.items():
                path = folder / name
                current = path.read_text(encoding="utf-8") if path.exists() else None
                if current is None or without_live(current) != without_live(text):
                    drift.append(name)
            if drift:
                raise CommandError(
                    _(
                        "%(drift)s deliverable(s) differ from the live configuration: "
                        "%(names)s. Run manage.py deliverables --out %(folder)s and commit."
                    )
                    % {"drift": len(drift), "names": ", ".join(drift), "folder": folder}
                )
            self.stdout.write(
                _("%(rendered)s deliverables match the live configuration.")
                % {"rendered": len(rendered)}
            )
            return
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in rendered.items():
            (folder / name).write_text(text, encoding="utf-8")
        self.stdout.write(
            _("%(rendered)s deliverables written to %(folder)s.")
            % {"rendered": len(rendered), "folder": folder}
        )
