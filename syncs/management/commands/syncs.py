"""``manage.py syncs run <job>`` (in the foreground, with a live progress line) and
``manage.py syncs status`` (every job with its last run)."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.translation import gettext as _

from syncs.models import RunState, SyncJob, SyncRun
from syncs.services.runner import run_job


class Command(BaseCommand):
    help = _("Run a sync job in the foreground, or list the jobs with their last run.")

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        run = sub.add_parser("run", help=_("Run one job now, here, with a progress line."))
        run.add_argument("job", help=_("The job's slug."))
        run.add_argument(
            "--no-wait",
            action="store_true",
            help=_(
                "When the partner asks to wait (Retry-After), leave the paused run to the "
                "workers instead of waiting here."
            ),
        )
        sub.add_parser("status", help=_("Every job with its last run."))

    def handle(self, *args, action, **options):
        if action == "status":
            return self._status()
        slug = options["job"]
        if not SyncJob.objects.filter(slug=slug).exists():
            known = ", ".join(SyncJob.objects.values_list("slug", flat=True)) or "none"
            raise CommandError(
                _('no sync job "%(slug)s" (jobs: %(known)s)') % {"slug": slug, "known": known}
            )
        started = time.monotonic()

        def progress(run: SyncRun) -> None:
            elapsed = max(time.monotonic() - started, 0.001)
            self.stdout.write(
                "\r"
                + _(
                    "%(slug)s: page %(pages)s, %(fetched)s records (%(rate)s/s), created "
                    "%(created)s, updated %(updated)s, unchanged %(unchanged)s, failed %(failed)s"
                )
                % {
                    "slug": slug,
                    "pages": run.pages,
                    "fetched": run.fetched,
                    "rate": f"{run.fetched / elapsed:.0f}",
                    "created": run.created,
                    "updated": run.updated,
                    "unchanged": run.unchanged,
                    "failed": run.failed,
                },
                ending="",
            )
            self.stdout.flush()

        run = run_job(slug, "manual", progress=progress)
        while run.status == RunState.PAUSED and not options["no_wait"]:
            wait = max(0.0, (run.next_attempt_at - timezone.now()).total_seconds())
            self.stdout.write(
                _("\n%(message)s; retries waiting: continuing in %(wait)ss")
                % {"message": run.message, "wait": f"{wait:.0f}"}
            )
            time.sleep(wait)
            run = run_job(slug, "continuation", progress=progress)
        self.stdout.write("")
        style = self.style.SUCCESS if run.status == RunState.SUCCEEDED else self.style.WARNING
        self.stdout.write(style(f"run #{run.pk}: {run.get_status_display()} {run.message}"))
        for error in run.errors:
            self.stdout.write(f"  {error['record']}: {error['error']}")
        if run.status == RunState.FAILED:
            raise CommandError(
                _("run #%(pk)s failed: %(message)s") % {"pk": run.pk, "message": run.message}
            )

    def _status(self):
        rows = [("job", "enabled", "schedule", "last run", "status", "records", "message")]
        for job in SyncJob.objects.order_by("slug"):
            run = job.runs.exclude(status=RunState.SKIPPED).first()
            rows.append(
                (
                    job.slug,
                    "yes" if job.enabled else "no",
                    job.cron or "by hand",
                    f"{run.started_at:%Y-%m-%d %H:%M}" if run else "never",
                    run.status if run else "-",
                    f"{run.fetched}" if run else "-",
                    (run.message[:60] if run else ""),
                )
            )
        widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            self.stdout.write("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)))
