"""``manage.py rotate_fernet_keys``: re-encrypt every secret under the first key of FERNET_KEYS."""

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from connectors.choices import AuditAction
from connectors.services.credentials import record_audit
from connectors.services.keyrotation import rotate_fernet_keys


class Command(BaseCommand):
    help = _(
        "Re-encrypt every stored secret under the first key of FERNET_KEYS, in batches. "
        "Idempotent. When it reports 0 unreadable, the other keys can be removed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500, help=_("Rows per transaction."))

    def handle(self, *args, batch_size, **options):
        if batch_size < 1:
            raise CommandError(_("--batch-size must be at least 1."))
        report = rotate_fernet_keys(batch_size=batch_size)
        for column, counts in sorted(report.per_column.items()):
            self.stdout.write(
                _(
                    "%(column)s: %(rotated)s re-encrypted, %(already_current)s already under the "
                    "primary key, %(unreadable)s unreadable"
                )
                % {
                    "column": column,
                    "rotated": counts["rotated"],
                    "already_current": counts["already_current"],
                    "unreadable": counts["unreadable"],
                }
            )
        summary = (
            f"Total: {report.rotated} re-encrypted, {report.already_current} already current, "
            f"{report.unreadable} unreadable."
        )
        record_audit(AuditAction.FERNET_KEYS_ROTATED, detail=summary)
        self.stdout.write(summary)
        if report.unreadable:
            self.stderr.write(
                self.style.WARNING(
                    _(
                        "%(unreadable)s value(s) could not be decrypted with any configured key: "
                        "do NOT remove old keys until these are replaced or their key is found."
                    )
                    % {"unreadable": report.unreadable}
                )
            )
        else:
            self.stdout.write(
                self.style.SUCCESS(_("Every secret is under the first key; the others can go."))
            )
