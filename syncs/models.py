"""Sync jobs (scheduled batch imports and exports), their runs, and the record mirror."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from connectors.shapes import check_object, sentence


class SourceKind(models.TextChoices):
    CONNECTION = "connection", _("A connection's list operation")
    PYTHON = "python", _("A registered Python source")


class TargetKind(models.TextChoices):
    MIRROR = "mirror", _("The record mirror")
    FLOW = "flow", _("A flow's action (upsert without duplicates)")
    PYTHON = "python", _("A registered Python handler")


class SyncMode(models.TextChoices):
    INCREMENTAL = "incremental", _("Incremental (from the cursor)")
    FULL = "full", _("Full (everything; reports records gone at the source)")


CURSOR_EXAMPLE = '{"at": "2026-12-01T02:00:00+00:00", "ids": ["c-41"]} or {"token": "…"}'


def check_cursor(cursor) -> list[str]:
    """A cursor a person edited (or cleared, ``{}``): the time and ids read at it, and/or the
    partner's token."""
    from datetime import datetime

    rules = {"at": str, "ids": list, "token": str}
    problems = check_object(cursor, rules, example=CURSOR_EXAMPLE)
    if not problems and isinstance(cursor.get("at"), str):
        try:
            datetime.fromisoformat(cursor["at"])
        except ValueError:
            problems.append(
                _('"at": "%(at)s" is not an ISO time, e.g. %(example)s')
                % {"at": cursor["at"], "example": CURSOR_EXAMPLE}
            )
    return problems


class SyncJob(models.Model):
    """A scheduled batch that keeps two systems in step: read pages from a source, map each
    record, write it to a target; advance the cursor after each committed page."""

    slug = models.SlugField(
        max_length=80, unique=True, help_text=_("Stable name (CLI, files)."), verbose_name=_("slug")
    )
    name = models.CharField(max_length=120, help_text=_("Human name."), verbose_name=_("name"))
    description = models.TextField(
        blank=True,
        help_text=_("What it keeps in step, for the team."),
        verbose_name=_("description"),
    )
    enabled = models.BooleanField(
        default=True, help_text=_("A disabled job is never scheduled."), verbose_name=_("enabled")
    )
    cron = models.CharField(
        max_length=100,
        blank=True,
        help_text=_(
            "When it runs (cron: minute hour day month weekday), by the workers. Empty: "
            "only by hand."
        ),
        verbose_name=_("cron"),
    )
    mode = models.CharField(
        max_length=20,
        choices=SyncMode.choices,
        default=SyncMode.INCREMENTAL,
        help_text=_("Mode."),
        verbose_name=_("mode"),
    )
    page_size = models.PositiveIntegerField(
        default=100, help_text=_("Records per page."), verbose_name=_("page size")
    )
    # -- source
    source_kind = models.CharField(
        max_length=20,
        choices=SourceKind.choices,
        default=SourceKind.CONNECTION,
        help_text=_("Where records come from."),
        verbose_name=_("source kind"),
    )
    source_connection = models.ForeignKey(
        "connectors.Connection",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="sync_sources",
        help_text=_("Connection source: the connection whose list operation is read."),
        verbose_name=_("source connection"),
    )
    source_method = models.CharField(
        max_length=10,
        choices=[("GET", "GET (parameters in the query)"), ("POST", "POST (parameters as JSON)")],
        default="GET",
        help_text=_(
            "Connection source: how the list operation is called. POST is for search "
            "endpoints that take their filters and paging in a JSON body."
        ),
        verbose_name=_("source method"),
    )
    source_path = models.CharField(
        max_length=500,
        blank=True,
        help_text=_(
            "Connection source: the list path (GET), e.g. /contacts; a query string may "
            "be part of it."
        ),
        verbose_name=_("source path"),
    )
    source_python = models.CharField(
        max_length=100,
        blank=True,
        help_text=_("Python source: the name a site module registered with @sync_source."),
        verbose_name=_("source python"),
    )
    pagination = models.CharField(
        max_length=30,
        default="cursor_token",
        help_text=_("How pages follow: cursor_token, link_header, offset, page_number."),
        verbose_name=_("pagination"),
    )
    pagination_options = models.JSONField(
        default=dict,
        blank=True,
        help_text=_(
            'Strategy options, e.g. {"cursor_param": "cursor", "next_path": "next_cursor"}.'
        ),
        verbose_name=_("pagination options"),
    )
    records_path = models.CharField(
        max_length=200,
        blank=True,
        default="results",
        help_text=_("Where the records are in a page's body (empty: the body is the list)."),
        verbose_name=_("records path"),
    )
    id_field = models.CharField(
        max_length=100,
        default="id",
        help_text=_("The record's id at the source."),
        verbose_name=_("ID field"),
    )
    updated_field = models.CharField(
        max_length=100,
        blank=True,
        default="updated_at",
        help_text=_(
            "The record's last-change time at the source (ISO 8601 or Unix time); the "
            "incremental cursor follows it."
        ),
        verbose_name=_("updated field"),
    )
    since_param = models.CharField(
        max_length=100,
        blank=True,
        default="updated_since",
        help_text=_(
            "Incremental: the query parameter that asks for records changed since a time "
            "(inclusive). Empty: the source has none (every run reads all, the cursor filters)."
        ),
        verbose_name=_("since param"),
    )
    overlap_seconds = models.PositiveIntegerField(
        default=0,
        help_text=_(
            "Incremental: re-read this many seconds before the cursor (late writes at the "
            "source); repeats are dropped by content hash."
        ),
        verbose_name=_("overlap seconds"),
    )
    # -- mapping and target
    mapping = models.ForeignKey(
        "flows.Mapping",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="sync_jobs",
        help_text=_("Mirror and Python targets: what is kept of each record (only these fields)."),
        verbose_name=_("mapping"),
    )
    target_kind = models.CharField(
        max_length=20,
        choices=TargetKind.choices,
        default=TargetKind.MIRROR,
        help_text=_("Where records go."),
        verbose_name=_("target kind"),
    )
    object_type = models.CharField(
        max_length=80,
        blank=True,
        help_text=_("Mirror target: the kind of record (contact, invoice…)."),
        verbose_name=_("object type"),
    )
    target_flow = models.ForeignKey(
        "flows.Flow",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="sync_jobs",
        help_text=_("Flow target: a flow (its mapping and upsert) run for each record."),
        verbose_name=_("target flow"),
    )
    target_python = models.CharField(
        max_length=100,
        blank=True,
        help_text=_("Python target: the name a site module registered with @sync_target."),
        verbose_name=_("target python"),
    )
    # -- state (written by the runner)
    cursor = models.JSONField(
        default=dict,
        blank=True,
        help_text=_(
            "Where the next incremental run starts: the last committed time and the ids "
            "read at that time, or the partner's opaque token. Clear it to start over."
        ),
        verbose_name=_("cursor"),
    )
    lease_until = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text=_("A run holds the job until then."),
        verbose_name=_("lease until"),
    )
    created_at = models.DateTimeField(
        auto_now_add=True, help_text=_("Created at."), verbose_name=_("created at")
    )
    updated_at = models.DateTimeField(
        auto_now=True, help_text=_("Last changed at."), verbose_name=_("updated at")
    )

    class Meta:
        verbose_name = _("sync job")
        verbose_name_plural = _("sync jobs")
        ordering = ["slug"]
        permissions = [("run_syncjob", "Can run a sync job by hand")]

    def __str__(self) -> str:
        return self.name or self.slug

    def clean(self):
        from syncs.pagination import check_options as check_pagination_options
        from syncs.pagination import registry as strategies
        from syncs.registry import sources, targets

        errors: dict[str, str] = {}
        if self.cron:
            from croniter import croniter

            if not croniter.is_valid(self.cron):
                errors["cron"] = _('"%(cron)s" is not a cron expression (e.g. "0 2 * * *").') % {
                    "cron": self.cron
                }
        if self.source_kind == SourceKind.CONNECTION:
            if not self.source_connection_id:
                errors["source_connection"] = _("A connection source needs its connection.")
            if not self.source_path:
                errors["source_path"] = _("A connection source needs its list path.")
            if self.pagination not in strategies:
                errors["pagination"] = _('unknown pagination "%(key)s" (known: %(known)s)') % {
                    "key": self.pagination,
                    "known": ", ".join(sorted(strategies)),
                }
            elif problems := check_pagination_options(self.pagination, self.pagination_options):
                errors["pagination_options"] = sentence(problems)
        elif self.source_python not in sources:
            errors["source_python"] = _(
                'no Python source registered as "%(name)s" (registered: %(known)s)'
            ) % {"name": self.source_python, "known": ", ".join(sorted(sources)) or _("none")}
        if self.target_kind == TargetKind.MIRROR:
            if not self.mapping_id:
                errors["mapping"] = _("The mirror keeps mapped fields only: give a mapping.")
            if not self.object_type:
                errors["object_type"] = _("Name the kind of record (contact, invoice…).")
            if not self.source_connection_id:
                errors["source_connection"] = _("Mirrored records belong to the source connection.")
        elif self.target_kind == TargetKind.FLOW and not self.target_flow_id:
            errors["target_flow"] = _("A flow target needs its flow.")
        elif self.target_kind == TargetKind.PYTHON and self.target_python not in targets:
            errors["target_python"] = _(
                'no Python target registered as "%(name)s" (registered: %(known)s)'
            ) % {"name": self.target_python, "known": ", ".join(sorted(targets)) or _("none")}
        if not 1 <= self.page_size <= 1000:
            errors["page_size"] = _("Between 1 and 1000.")
        if problems := check_cursor(self.cursor):
            errors["cursor"] = sentence(problems)
        if errors:
            raise ValidationError(errors)


# What a person configures on a sync job, grouped as the console shows it; the console's form
# and integrations as code both read this list. The cursor is state (where the last run got to).
SYNC_JOB_SETTINGS: list[tuple[str | None, list[str]]] = [
    (None, ["slug", "name", "description", "enabled", "cron", "mode"]),
    (
        "Source",
        [
            "source_kind",
            "source_connection",
            "source_method",
            "source_path",
            "pagination",
            "pagination_options",
            "records_path",
            "id_field",
            "updated_field",
            "since_param",
            "overlap_seconds",
            "page_size",
            "source_python",
        ],
    ),
    ("Target", ["target_kind", "mapping", "object_type", "target_flow", "target_python"]),
]
SYNC_JOB_STATE = ["cursor"]


class RunState(models.TextChoices):
    RUNNING = "running", _("Running")
    PAUSED = "paused", _("Paused (continues later)")
    SUCCEEDED = "succeeded", _("Succeeded")
    PARTIAL = "partial", _("Finished with failed records")
    FAILED = "failed", _("Failed")
    SKIPPED = "skipped", _("Skipped (another run was going)")


class SyncRun(models.Model):
    """One run of a job: counts, the cursor before and after, the first errors."""

    job = models.ForeignKey(
        SyncJob,
        on_delete=models.CASCADE,
        related_name="runs",
        help_text=_("The job."),
        verbose_name=_("job"),
    )
    trigger = models.CharField(
        max_length=20,
        default="manual",
        help_text=_("schedule, manual, or continuation."),
        verbose_name=_("trigger"),
    )
    status = models.CharField(
        max_length=20,
        choices=RunState.choices,
        default=RunState.RUNNING,
        help_text=_("Status."),
        verbose_name=_("status"),
    )
    mode = models.CharField(
        max_length=20, choices=SyncMode.choices, help_text=_("Mode."), verbose_name=_("mode")
    )
    started_at = models.DateTimeField(
        default=timezone.now, db_index=True, help_text=_("Start."), verbose_name=_("started at")
    )
    finished_at = models.DateTimeField(
        null=True, blank=True, help_text=_("End."), verbose_name=_("finished at")
    )
    pages = models.PositiveIntegerField(
        default=0, help_text=_("Pages committed."), verbose_name=_("pages")
    )
    fetched = models.PositiveIntegerField(
        default=0, help_text=_("Records read."), verbose_name=_("fetched")
    )
    created = models.PositiveIntegerField(
        default=0, help_text=_("Records created at the target."), verbose_name=_("created")
    )
    updated = models.PositiveIntegerField(
        default=0, help_text=_("Records updated at the target."), verbose_name=_("updated")
    )
    unchanged = models.PositiveIntegerField(
        default=0,
        help_text=_("Records skipped: same content as last time."),
        verbose_name=_("unchanged"),
    )
    failed = models.PositiveIntegerField(
        default=0, help_text=_("Records that could not be synced."), verbose_name=_("failed")
    )
    disappeared = models.PositiveIntegerField(
        default=0,
        help_text=_("Full runs: mirrored records no longer at the source."),
        verbose_name=_("disappeared"),
    )
    cursor_before = models.JSONField(
        default=dict,
        blank=True,
        help_text=_("Cursor at the start."),
        verbose_name=_("cursor before"),
    )
    cursor_after = models.JSONField(
        default=dict, blank=True, help_text=_("Cursor at the end."), verbose_name=_("cursor after")
    )
    page_state = models.JSONField(
        default=dict,
        blank=True,
        help_text=_("Where the next page starts (a killed or paused run resumes from here)."),
        verbose_name=_("page state"),
    )
    errors = models.JSONField(
        default=list,
        blank=True,
        help_text=_("The first errors, with their record ids."),
        verbose_name=_("errors"),
    )
    resumed = models.PositiveIntegerField(
        default=0,
        help_text=_("Times the run continued (after a pause or a lost worker)."),
        verbose_name=_("resumed"),
    )
    next_attempt_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("Paused: when it continues."),
        verbose_name=_("next attempt at"),
    )
    message = models.CharField(
        max_length=500,
        blank=True,
        help_text=_("Why it paused, skipped…"),
        verbose_name=_("message"),
    )
    skips = models.PositiveIntegerField(
        default=0,
        help_text=_(
            "A skipped run: how many ticks in a row were skipped (counted on this one row "
            "until a run starts), the last one at its end time."
        ),
        verbose_name=_("skips"),
    )
    correlation_id = models.CharField(
        max_length=100,
        db_index=True,
        help_text=_("Shared by the run's API calls."),
        verbose_name=_("correlation ID"),
    )

    class Meta:
        verbose_name = _("sync run")
        verbose_name_plural = _("sync runs")
        ordering = ["-started_at", "-pk"]
        indexes = [
            models.Index(fields=["job", "-started_at"]),
            models.Index(fields=["started_at", "id"], name="syncrun_started"),
        ]

    def __str__(self) -> str:
        return f"{self.job} #{self.pk} {self.status}"


class MirrorRecord(models.Model):
    """A local copy of a partner's record: the mapped fields only, and how it changes."""

    connection = models.ForeignKey(
        "connectors.Connection",
        on_delete=models.CASCADE,
        related_name="mirror_records",
        help_text=_("Where the record lives."),
        verbose_name=_("connection"),
    )
    object_type = models.CharField(
        max_length=80, help_text=_("contact, invoice…"), verbose_name=_("object type")
    )
    external_id = models.CharField(
        max_length=200, help_text=_("The partner's id."), verbose_name=_("external ID")
    )
    data = models.JSONField(
        default=dict, help_text=_("The mapped fields only."), verbose_name=_("data")
    )
    content_hash = models.CharField(
        max_length=64, help_text=_("SHA-256 of the mapped fields."), verbose_name=_("content hash")
    )
    source_updated_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("The source's last change."),
        verbose_name=_("source updated at"),
    )
    last_synced_at = models.DateTimeField(
        default=timezone.now, help_text=_("Last written here."), verbose_name=_("last synced at")
    )
    last_seen_run = models.BigIntegerField(
        default=0,
        help_text=_("The last run that read it (full runs find the gone ones)."),
        verbose_name=_("last seen run"),
    )
    disappeared_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("A full run no longer found it at the source."),
        verbose_name=_("disappeared at"),
    )

    class Meta:
        verbose_name = _("mirrored record")
        verbose_name_plural = _("mirrored records")
        ordering = ["connection", "object_type", "external_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "object_type", "external_id"], name="mirror_unique_record"
            )
        ]
        # the object type filter steps through this index (never SELECT DISTINCT)
        indexes = [
            models.Index(fields=["object_type"], name="mirror_object_type"),
            models.Index(fields=["external_id"], name="mirror_external_id"),
        ]
        permissions = [("view_pii", "Can see personal data in mirrored records")]

    def __str__(self) -> str:
        return f"{self.object_type} {self.external_id}"
