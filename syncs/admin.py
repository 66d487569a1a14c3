"""Sync jobs in the console (next run, last run, Run now, history), their runs, and the record
mirror with a CSV export that masks personal data for users without the permission to see it."""

from __future__ import annotations

import csv
import io
import json

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Subquery, Value
from django.db.models.functions import Concat
from django.http import HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from connectors.admin.calls import calls_link
from connectors.admin.columns import truncated, when
from connectors.admin.fields import StructuredFieldsMixin
from connectors.admin.readonly import ReadOnlyAdminMixin
from connectors.admin.scale import BoundedListMixin, distinct_values_filter
from connectors.admin.status import status
from flows.paths import leaves
from syncs.models import (
    CURSOR_EXAMPLE,
    SYNC_JOB_SETTINGS,
    MirrorRecord,
    RunState,
    SyncJob,
    SyncRun,
)

SETTINGS = dict(SYNC_JOB_SETTINGS)
PII_PERMISSION = "syncs.view_pii"
MASK = "•••"


def _badge(state: str | None, started_at) -> str:
    if state is None:
        return "never run"
    return format_html("{} {}", status("sync_run", state, RunState(state).label), when(started_at))


def last_run(job: SyncJob) -> SyncRun | None:
    return job.runs.exclude(status=RunState.SKIPPED).first()


@admin.register(SyncJob)
class SyncJobAdmin(StructuredFieldsMixin, admin.ModelAdmin):
    json_examples = {
        "pagination_options": '{"cursor_param": "cursor", "next_path": "next_cursor"}',
        "cursor": CURSOR_EXAMPLE,
    }
    list_display = ["slug", "name", "enabled", "mode", "cron", "next_run_at", "last_run_status"]
    list_filter = ["enabled", "mode", "source_kind", "target_kind"]
    search_fields = ["slug", "name"]
    readonly_fields = ["lease_until", "next_run_at", "last_run_status", "history"]
    change_form_template = "admin/syncs/syncjob/change_form.html"
    # the settings come from the model's list (integrations as code reads the same one)
    fieldsets = [
        (None, {"fields": SETTINGS[None]}),
        (_("Source"), {"fields": SETTINGS["Source"]}),
        (_("Target"), {"fields": SETTINGS["Target"]}),
        (
            _("State"),
            {"fields": ["cursor", "lease_until", "next_run_at", "last_run_status", "history"]},
        ),
    ]

    def get_queryset(self, request):
        # the next and the last run of each job in the list's one query (the job's page loads
        # it through here too)
        from django_q.models import Schedule

        runs = (
            SyncRun.objects.filter(job=OuterRef("pk"))
            .exclude(status=RunState.SKIPPED)
            .order_by("-started_at", "-pk")
        )
        schedules = Schedule.objects.filter(name=Concat(Value("sync:"), OuterRef("slug")))
        return (
            super()
            .get_queryset(request)
            .annotate(
                scheduled_at=Subquery(schedules.values("next_run")[:1]),
                last_run_status=Subquery(runs.values("status")[:1]),
                last_run_at=Subquery(runs.values("started_at")[:1]),
            )
        )

    @admin.display(description=_("Next run"))
    def next_run_at(self, obj):
        if not obj or not obj.pk:
            return "—"
        return when(obj.scheduled_at)

    @admin.display(description=_("Last run"))
    def last_run_status(self, obj):
        if not obj or not obj.pk:
            return "—"
        return _badge(obj.last_run_status, obj.last_run_at)

    @admin.display(description=_("Runs"))
    def history(self, obj):
        if obj is None or not obj.pk:
            return "—"
        url = reverse("admin:syncs_syncrun_changelist") + f"?job__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, _("run history"))

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/run/", wrap(self.run_view), name="syncs_syncjob_run"),
            *super().get_urls(),
        ]

    def has_run_permission(self, request):
        return request.user.has_perm("syncs.run_syncjob")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "can_run": self.has_run_permission(request)}
        return super().change_view(request, object_id, form_url, extra_context)

    def run_view(self, request, object_id):
        """Run now: queued for the workers (a long run never holds the web request)."""
        from django_q.tasks import async_task

        job = self.get_object(request, object_id)
        if request.method != "POST" or job is None or not self.has_run_permission(request):
            raise PermissionDenied
        async_task("syncs.services.runner.run_job", job.slug, "manual")
        self.message_user(
            request,
            _("%(job)s queued; its run appears in the history.") % {"job": job},
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:syncs_syncjob_change", args=[job.pk]))


@admin.register(SyncRun)
class SyncRunAdmin(BoundedListMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "started_at",
        "job",
        "trigger",
        "coloured_status",
        "pages",
        "fetched",
        "created",
        "updated",
        "unchanged",
        "failed",
        "disappeared",
        "short_message",
    ]
    list_filter = ["status", "trigger", "job", ("started_at", admin.DateFieldListFilter)]
    search_exact = ["correlation_id"]
    search_help_text = _("A correlation id, exactly.")
    list_defer = ["cursor_before", "cursor_after", "page_state", "errors"]
    list_select_related = ["job"]
    fields = [
        "job",
        "trigger",
        "mode",
        "status",
        "message",
        "started_at",
        "finished_at",
        "next_attempt_at",
        "resumed",
        "pages",
        "fetched",
        "created",
        "updated",
        "unchanged",
        "failed",
        "disappeared",
        "cursor_before",
        "cursor_after",
        "error_list",
        "correlation_id",
        "api_calls",
    ]
    readonly_fields = fields

    @admin.display(description=_("Status"), ordering="status")
    def coloured_status(self, obj):
        return status("sync_run", obj.status, obj.get_status_display())

    @admin.display(description=_("message"))
    def short_message(self, obj):
        return truncated(obj.message, 80)

    @admin.display(description=_("First errors"))
    def error_list(self, obj):
        if not obj.errors:
            return "—"
        return format_html_join(
            "", "<div><code>{}</code>: {}</div>", ((e["record"], e["error"]) for e in obj.errors)
        )

    @admin.display(description=_("API calls"))
    def api_calls(self, obj):
        return calls_link(obj.correlation_id)


def pii_targets(record: MirrorRecord) -> set[str]:
    """The PII target paths of the mappings of the jobs that mirror this kind of record."""
    from flows.models import MappingRule

    return set(
        MappingRule.objects.filter(
            pii=True,
            mapping__sync_jobs__source_connection_id=record.connection_id,
            mapping__sync_jobs__object_type=record.object_type,
        ).values_list("target", flat=True)
    )


def masked(data: dict, pii: set[str], prefix: str = "") -> dict:
    out = {}
    for name, value in data.items():
        path = prefix + name
        if path in pii:
            out[name] = MASK
        elif isinstance(value, dict):
            out[name] = masked(value, pii, path + ".")
        else:
            out[name] = value
    return out


@admin.register(MirrorRecord)
class MirrorRecordAdmin(BoundedListMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "external_id",
        "object_type",
        "connection",
        "source_updated_at",
        "last_synced_at",
        "disappeared_at",
    ]
    list_filter = [
        distinct_values_filter("object_type", _("object type")),
        "connection",
        "disappeared_at",
    ]
    search_exact = ["external_id"]
    search_help_text = _("The partner's record id, exactly.")
    list_defer = ["data"]
    fields = [
        "connection",
        "object_type",
        "external_id",
        "shown_data",
        "content_hash",
        "source_updated_at",
        "last_synced_at",
        "disappeared_at",
    ]
    readonly_fields = fields
    actions = ["export_csv"]

    def get_object(self, request, object_id, from_field=None):
        # Decided per request, on the object this request loaded: a ModelAdmin is one instance
        # shared by every thread, so "can this user see PII" must never be kept on it.
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            obj.viewer_can_see_pii = request.user.has_perm(PII_PERMISSION)
        return obj

    @admin.display(description=_("Data (mapped fields)"))
    def shown_data(self, obj):
        can_see = getattr(obj, "viewer_can_see_pii", False)  # masked unless decided otherwise
        data = obj.data if can_see else masked(obj.data, pii_targets(obj))
        return format_html("<pre>{}</pre>", json.dumps(data, indent=2, ensure_ascii=False))

    @admin.action(description=_("Export the selected records as CSV"))
    def export_csv(self, request, queryset):
        can_see = request.user.has_perm(PII_PERMISSION)
        rows = list(queryset.order_by("connection", "object_type", "external_id"))
        cache: dict = {}
        columns: list[str] = []
        prepared = []
        for row in rows:
            key = (row.connection_id, row.object_type)
            if key not in cache:
                cache[key] = pii_targets(row)
            data = row.data if can_see else masked(row.data, cache[key])
            flat = dict(leaves(data))
            columns += [name for name in flat if name not in columns]
            prepared.append((row, flat))
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["object_type", "external_id", *columns, "last_synced_at", "disappeared"])
        for row, flat in prepared:
            writer.writerow(
                [
                    row.object_type,
                    row.external_id,
                    *[_cell(flat.get(name, "")) for name in columns],
                    row.last_synced_at.isoformat(),
                    "yes" if row.disappeared_at else "",
                ]
            )
        response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="mirrored-records.csv"'
        return response


def _cell(value) -> str:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (list, dict)) else str(value)


def connection_sync_panel(connection) -> str:
    """For the connection page: the jobs that read from it, a failing one in red."""
    jobs = list(SyncJob.objects.filter(source_connection=connection))
    if not jobs:
        return ""
    parts = []
    for job in jobs:
        run = last_run(job)
        url = reverse("admin:syncs_syncjob_change", args=[job.pk])
        badge = _badge(run.status, run.started_at) if run else _badge(None, None)
        parts.append(format_html('sync <a href="{}">{}</a>: {}', url, job.slug, badge))
    return format_html_join(", ", "{}", ((p,) for p in parts))
