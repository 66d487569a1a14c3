"""The console for mappings (with a preview and the mapping sheet), flows (with Run now) and
flow runs (linked to their event and API calls)."""

from __future__ import annotations

import csv
import io
import json
import secrets

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Count, OuterRef, Prefetch, Subquery
from django.http import HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from connectors.admin.calls import calls_link, run_calls_link
from connectors.admin.columns import truncated, when
from connectors.admin.depends import DependentFieldsMixin
from connectors.admin.fields import StructuredFieldsMixin
from connectors.admin.readonly import ReadOnlyAdminMixin
from connectors.admin.scale import BoundedListMixin
from connectors.admin.status import status
from connectors.models import ApiCall
from flows.mapping import apply_rules
from flows.models import (
    FLOW_SETTINGS,
    MAPPING_SETTINGS,
    RULE_SETTINGS,
    Flow,
    FlowCancellation,
    FlowRun,
    FlowRunStep,
    Mapping,
    MappingRule,
    RunStatus,
)
from syncs.admin import MASK, PII_PERMISSION, masked

PREVIEW_EVENTS = 50
FLOW = dict(FLOW_SETTINGS)


class MappingRuleInline(StructuredFieldsMixin, admin.TabularInline):
    json_examples = {"args": '{"region": "FR"}', "default": '"unknown"'}
    model = MappingRule
    extra = 1
    fields = ["position", *RULE_SETTINGS]
    # one line per rule, so the rules table fits a laptop screen (1366 px)
    formfield_overrides = {
        models.JSONField: {"widget": forms.Textarea(attrs={"rows": 1, "cols": 12})},
        models.CharField: {"widget": forms.TextInput(attrs={"size": 16})},
        models.PositiveIntegerField: {"widget": forms.NumberInput(attrs={"style": "width:4em"})},
    }


def sheet_rows(mapping: Mapping) -> list[list[str]]:
    """The mapping sheet ("mapping des champs"): source, target, transform, required, PII."""
    rows = []
    for rule in mapping.rules.all():
        transform = rule.transform
        if rule.args:
            transform += " " + json.dumps(rule.args, ensure_ascii=False, sort_keys=True)
        rows.append(
            [
                rule.source or "—",
                rule.target,
                transform,
                "yes" if rule.required else "no",
                "yes" if rule.pii else "no",
            ]
        )
    return rows


SHEET_HEADER = ["source", "target", "transform", "required", "PII"]


class PreviewForm(forms.Form):
    event = forms.TypedChoiceField(
        required=False, coerce=int, empty_value=None, help_text=_("A recent event's body…")
    )
    payload = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 14, "cols": 90}),
        help_text=_("…or a sample payload (JSON)."),
    )


@admin.register(Mapping)
class MappingAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "rule_count", "pii_count", "used_by"]
    search_fields = ["slug", "name"]
    fieldsets = [(title, {"fields": names}) for title, names in MAPPING_SETTINGS]
    inlines = [MappingRuleInline]
    change_form_template = "admin/flows/mapping/change_form.html"

    def get_queryset(self, request):
        rules = MappingRule.objects.filter(mapping=OuterRef("pk")).values("mapping")
        return (
            super()
            .get_queryset(request)
            .annotate(
                rule_total=Subquery(rules.annotate(n=Count("pk")).values("n")),
                pii_total=Subquery(rules.filter(pii=True).annotate(n=Count("pk")).values("n")),
            )
            .prefetch_related(Prefetch("flows", queryset=Flow.objects.only("slug", "mapping")))
        )

    @admin.display(description=_("Rules"), ordering="rule_total")
    def rule_count(self, obj):
        return obj.rule_total or 0

    @admin.display(description=_("PII fields"), ordering="pii_total")
    def pii_count(self, obj):
        return obj.pii_total or 0

    @admin.display(description=_("Flows"))
    def used_by(self, obj):
        return ", ".join(flow.slug for flow in obj.flows.all()) or "—"

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/preview/", wrap(self.preview_view), name="flows_mapping_preview"
            ),
            path("<path:object_id>/sheet.csv", wrap(self.sheet_csv), name="flows_mapping_csv"),
            path("<path:object_id>/sheet.md", wrap(self.sheet_md), name="flows_mapping_md"),
            *super().get_urls(),
        ]

    def _mapping(self, request, object_id) -> Mapping:
        mapping = self.get_object(request, object_id)
        if mapping is None or not self.has_view_permission(request, mapping):
            raise PermissionDenied
        return mapping

    def preview_view(self, request, object_id):
        from webhooks.models import WebhookEvent

        mapping = self._mapping(request, object_id)
        events = list(
            WebhookEvent.objects.select_related("endpoint")
            .order_by("-received_at")
            .only("pk", "event_type", "received_at", "endpoint__slug")[:PREVIEW_EVENTS]
        )
        form = PreviewForm(request.POST or None)
        form.fields["event"].choices = [("", "—")] + [
            (e.pk, f"{when(e.received_at)} {e.endpoint.slug} {e.event_type}") for e in events
        ]
        result, problem = None, ""
        if request.method == "POST" and form.is_valid():
            payload, problem = None, ""
            if form.cleaned_data["event"]:
                event = WebhookEvent.objects.filter(pk=form.cleaned_data["event"]).first()
                payload = event.payload() if event else None
                if payload is None:
                    problem = _("That event has no JSON body.")
            elif form.cleaned_data["payload"].strip():
                try:
                    payload = json.loads(form.cleaned_data["payload"])
                except ValueError as exc:
                    problem = _("The sample is not valid JSON: %(error)s") % {"error": exc}
            else:
                problem = _("Pick an event or paste a sample payload.")
            if not problem:
                result = apply_rules(mapping.specs(), payload)
        return TemplateResponse(
            request,
            "admin/flows/mapping/preview.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "original": mapping,
                "title": _("Preview of %(mapping)s") % {"mapping": mapping},
                "form": form,
                "result": result,
                "output": json.dumps(result.output, indent=2, ensure_ascii=False) if result else "",
                "problem": problem,
            },
        )

    def sheet_csv(self, request, object_id):
        mapping = self._mapping(request, object_id)
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(SHEET_HEADER)
        writer.writerows(sheet_rows(mapping))
        response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="mapping-{mapping.slug}.csv"'
        return response

    def sheet_md(self, request, object_id):
        mapping = self._mapping(request, object_id)

        def cell(text: str) -> str:
            return text.replace("|", "\\|")

        lines = [
            f"# Field mapping sheet: {mapping.name} (`{mapping.slug}`)",
            "",
            "| " + " | ".join(SHEET_HEADER) + " |",
            "|" + "---|" * len(SHEET_HEADER),
        ]
        lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in sheet_rows(mapping)]
        response = HttpResponse(
            "\n".join(lines) + "\n", content_type="text/markdown; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="mapping-{mapping.slug}.md"'
        return response


class RunNowForm(forms.Form):
    payload = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 12, "cols": 90}),
        initial="{}",
        help_text=_("The data the mapping reads (JSON), as a webhook event's body would be."),
    )


@admin.register(Flow)
class FlowAdmin(StructuredFieldsMixin, DependentFieldsMixin, admin.ModelAdmin):
    list_display = [
        "slug",
        "name",
        "enabled",
        "trigger",
        "trigger_detail",
        "connection",
        "last_run",
    ]
    list_filter = ["enabled", "trigger", "connection"]
    list_select_related = ["endpoint", "connection"]
    search_fields = ["slug", "name"]
    readonly_fields = ["scope_check", "recent_runs", "steps_diagram"]
    change_form_template = "admin/flows/flow/change_form.html"
    scope_fields = ("required_scopes",)
    json_examples = {
        "condition": '[{"path": "data.status", "op": "eq", "value": "succeeded"}]',
        "steps": (
            '[{"name": "verify", "kind": "fetch", "path": "/payments/{trigger.id}"}, '
            '{"name": "paid", "kind": "condition", "when": [{"path": '
            '"steps.verify.data.status", "op": "eq", "value": "succeeded"}]}, '
            '{"name": "invoice", "kind": "call", "path": "/invoices", "mapping": "to-invoice"}]'
        ),
    }
    # the trigger's own fields only for that trigger
    field_depends = (
        "trigger",
        {"endpoint": ["webhook"], "event_type": ["webhook"], "cron": ["schedule"]},
    )
    # the settings come from the model's list (integrations as code reads the same one)
    fieldsets = [
        (None, {"fields": FLOW[None]}),
        (_("Trigger"), {"fields": FLOW["Trigger"]}),
        (_("Action"), {"fields": [*FLOW["Action"], "scope_check"]}),
        (
            _("Upsert without duplicates"),
            {
                "description": _(
                    "Name a match key to look the record up first, then update it "
                    "or create it (never twice)."
                ),
                "fields": FLOW["Upsert without duplicates"],
            },
        ),
        (
            _("Workflow"),
            {
                "description": _(
                    "Several steps instead of the one action: each runs exactly once, a retry "
                    "resumes at the step that failed. docs/workflows.md describes each kind."
                ),
                "fields": [*FLOW["Workflow"], "steps_diagram"],
            },
        ),
        (_("Runs"), {"fields": ["recent_runs"]}),
    ]

    @admin.display(description=_("The steps, in order"))
    def steps_diagram(self, obj):
        return steps_diagram(obj.steps if obj is not None else None)

    @admin.display(description=_("When"))
    def trigger_detail(self, obj):
        if obj.trigger == "webhook":
            return f"{obj.endpoint.slug if obj.endpoint else '?'} · {obj.event_type}"
        if obj.trigger == "schedule":
            return obj.cron
        if obj.trigger == "sync":
            return _("each record of its sync jobs")
        return _("by hand / API")

    def get_queryset(self, request):
        # the last run of each flow, in the list's one query (the index on flow, -started_at)
        runs = FlowRun.objects.filter(flow=OuterRef("pk")).order_by("-started_at", "-pk")
        return (
            super()
            .get_queryset(request)
            .annotate(
                last_run_status=Subquery(runs.values("status")[:1]),
                last_run_at=Subquery(runs.values("started_at")[:1]),
            )
        )

    @admin.display(description=_("Last run"))
    def last_run(self, obj):
        state = getattr(obj, "last_run_status", None)
        if state is None:
            return "—"
        return format_html(
            "{} {}",
            status("flow_run", state, RunStatus(state).label),
            when(obj.last_run_at),
        )

    @admin.display(description=_("Scopes"))
    def scope_check(self, obj):
        if obj is None or not obj.pk or not obj.required_scopes:
            return "—"
        granted = set(obj.connection.granted_scopes or obj.connection.requested_scopes or [])
        missing = [s for s in obj.required_scopes if s not in granted]
        if missing:
            return format_html(
                '<strong class="hub-status hub-error">{}</strong>',
                _("The connection was not granted: %(scopes)s") % {"scopes": ", ".join(missing)},
            )
        return _("The connection holds every scope this flow needs.")

    @admin.display(description=_("Recent runs"))
    def recent_runs(self, obj):
        if obj is None or not obj.pk:
            return "—"
        url = reverse("admin:flows_flowrun_changelist") + f"?flow__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, _("all runs of this flow"))

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/run/", wrap(self.run_view), name="flows_flow_run"),
            *super().get_urls(),
        ]

    def has_run_permission(self, request):
        return request.user.has_perm("flows.run_flow")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "can_run": self.has_run_permission(request)}
        return super().change_view(request, object_id, form_url, extra_context)

    def run_view(self, request, object_id):
        from flows.services.dispatch import run_manual

        flow = self.get_object(request, object_id)
        if flow is None or not self.has_run_permission(request):
            raise PermissionDenied
        form = RunNowForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                payload = json.loads(form.cleaned_data["payload"])
            except ValueError as exc:
                form.add_error("payload", _("Not valid JSON: %(error)s") % {"error": exc})
            else:
                ref = f"admin:{request.user.get_username()}:{request.POST.get('nonce', '')}"
                try:
                    result = run_manual(flow, payload, trigger_ref=ref)
                except Exception as exc:
                    run = getattr(exc, "flow_run", None)
                    self.message_user(
                        request,
                        _("The run failed: %(error)s") % {"error": run.error if run else exc},
                        messages.ERROR,
                    )
                else:
                    run = result.run
                    self.message_user(
                        request,
                        _("Run #%(pk)s: %(status)s")
                        % {"pk": run.pk, "status": run.get_status_display()}
                        + (f", {run.get_outcome_display().lower()}" if run.outcome else "")
                        + (f" ({run.record_id})" if run.record_id else ""),
                        messages.SUCCESS,
                    )
                if run is not None:
                    return HttpResponseRedirect(
                        reverse("admin:flows_flowrun_change", args=[run.pk])
                    )
        return TemplateResponse(
            request,
            "admin/flows/flow/run.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "original": flow,
                "title": _("Run %(flow)s now") % {"flow": flow},
                "form": form,
                "nonce": secrets.token_hex(8),
            },
        )


def steps_diagram(steps) -> str:
    """A flow's steps as a diagram: one box per step (its number, name, kind and what it
    does), an arrow between them; a condition says where it goes otherwise."""
    from flows.steps import STEP_KINDS

    if not steps or not isinstance(steps, list):
        return _("One action (no steps).")
    boxes = []
    for index, step in enumerate(steps, start=1):
        if not isinstance(step, dict):
            continue
        kind = STEP_KINDS.get(step.get("kind", ""))
        boxes.append(
            (
                index,
                step.get("name", "?"),
                kind.label if kind else step.get("kind", "?"),
                kind.summary(step) if kind else "",
            )
        )
    return format_html(
        '<ol class="hub-steps">{}</ol>',
        format_html_join(
            "",
            '<li><span class="hub-step-number">{}</span> <strong>{}</strong> '
            '<span class="hub-step-kind">{}</span><br><code>{}</code></li>',
            boxes,
        ),
    )


@admin.register(FlowCancellation)
class FlowCancellationAdmin(BoundedListMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """The cancelling events kept for a day, for runs whose starting event comes later."""

    list_display = ["received_at", "flow", "key", "cancelled_by"]
    list_filter = ["flow"]
    list_select_related = ["flow"]
    search_exact = ["key"]
    search_help_text = _("The correlation value the cancelling event named, exactly.")
    fields = list_display
    readonly_fields = list_display


@admin.register(FlowRun)
class FlowRunAdmin(BoundedListMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "started_at",
        "flow",
        "trigger",
        "coloured_status",
        "current_step",
        "resumes",
        "outcome",
        "record_id",
        "duration_ms",
        "short_error",
    ]
    list_defer = ["trigger_data"]
    change_form_template = "admin/flows/flowrun/change_form.html"
    actions = ["retry_selected", "cancel_selected"]
    list_filter = [
        "status",
        "trigger",
        "outcome",
        "flow",
        ("started_at", admin.DateFieldListFilter),
    ]
    search_exact = ["correlation_id", "record_id", "trigger_ref"]
    search_help_text = _(
        "A correlation id, the partner's record id or the trigger's reference, exactly."
    )
    list_select_related = ["flow"]
    fields = [
        "flow",
        "trigger",
        "trigger_ref",
        "event_link",
        "status",
        "current_step",
        "resume_at",
        "attempts",
        "cancelled_by",
        "steps_table",
        "outcome",
        "record_id",
        "started_at",
        "lease_until",
        "finished_at",
        "duration_ms",
        "error",
        "correlation_id",
        "api_calls",
    ]
    readonly_fields = fields

    @admin.display(description=_("Status"), ordering="status")
    def coloured_status(self, obj):
        return status("flow_run", obj.status, obj.get_status_display())

    @admin.display(description=_("Resumes at"), ordering="resume_at")
    def resumes(self, obj):
        return when(obj.resume_at) if obj.status == RunStatus.WAITING else "—"

    def get_object(self, request, object_id, from_field=None):
        # decided per request on the object it loaded (a ModelAdmin is shared by every thread)
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            obj.viewer_can_see_pii = request.user.has_perm(PII_PERMISSION)
        return obj

    @admin.display(description=_("Steps"))
    def steps_table(self, obj):
        rows = list(FlowRunStep.objects.filter(run=obj).order_by("position", "pk"))
        if not rows:
            return "—"
        return run_steps_table(obj, rows, can_see_pii=getattr(obj, "viewer_can_see_pii", False))

    # -- Retry from the failed step, Cancel ------------------------------------------------
    def has_run_permission(self, request):
        return request.user.has_perm("flows.run_flow")

    @admin.action(description=_("Retry from the failed step"), permissions=["run"])
    def retry_selected(self, request, queryset):
        from flows.services import workflow

        count = sum(workflow.retry_by_hand(run) for run in queryset.select_related("flow"))
        self.message_user(
            request,
            ngettext(
                "%(n)s run resumes at its failed step.",
                "%(n)s runs resume at their failed step.",
                count,
            )
            % {"n": count},
            messages.SUCCESS if count else messages.WARNING,
        )

    @admin.action(description=_("Cancel the pending steps"), permissions=["run"])
    def cancel_selected(self, request, queryset):
        from flows.services import workflow

        by = _("%(user)s, by hand") % {"user": request.user.get_username()}
        count = sum(workflow.cancel(run.pk, by=str(by)) for run in queryset.only("pk"))
        self.message_user(
            request,
            ngettext("%(n)s run cancelled.", "%(n)s runs cancelled.", count) % {"n": count},
            messages.SUCCESS if count else messages.WARNING,
        )

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/retry/", wrap(self.retry_view), name="flows_flowrun_retry"),
            path("<path:object_id>/cancel/", wrap(self.cancel_view), name="flows_flowrun_cancel"),
            *super().get_urls(),
        ]

    def _run_or_403(self, request, object_id) -> FlowRun:
        if request.method != "POST" or not self.has_run_permission(request):
            raise PermissionDenied
        run = self.get_object(request, object_id)
        if run is None:
            raise PermissionDenied
        return run

    def retry_view(self, request, object_id):
        from flows.services import workflow

        run = self._run_or_403(request, object_id)
        if workflow.retry_by_hand(run):
            self.message_user(request, _("The run resumes at its failed step."), messages.SUCCESS)
        else:
            self.message_user(
                request,
                _("Not retried: only a failed, retried or interrupted workflow run can be."),
                messages.WARNING,
            )
        return HttpResponseRedirect(reverse("admin:flows_flowrun_change", args=[run.pk]))

    def cancel_view(self, request, object_id):
        from flows.services import workflow

        run = self._run_or_403(request, object_id)
        by = _("%(user)s, by hand") % {"user": request.user.get_username()}
        if workflow.cancel(run.pk, by=str(by)):
            self.message_user(request, _("The run's pending steps are cancelled."))
        else:
            self.message_user(request, _("Not cancelled: the run has ended."), messages.WARNING)
        return HttpResponseRedirect(reverse("admin:flows_flowrun_change", args=[run.pk]))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        from flows.services.workflow import PENDING

        run = self.get_object(request, object_id)
        allowed = self.has_run_permission(request) and run is not None and run.flow.is_workflow
        extra_context = {
            **(extra_context or {}),
            "can_retry": allowed and run.status in RETRYABLE,
            "can_cancel": allowed and run.status in PENDING,
        }
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description=_("Error"))
    def short_error(self, obj):
        return truncated(obj.error, 80)

    @admin.display(description=_("Event"))
    def event_link(self, obj):
        if not obj.event_id:
            return "—"
        url = reverse("admin:webhooks_webhookevent_change", args=[obj.event_id])
        return format_html('<a href="{}">event #{}</a>', url, obj.event_id)

    @admin.display(description=_("API calls"))
    def api_calls(self, obj):
        count = ApiCall.objects.filter(run_ref=obj.calls_ref).count()
        # the run's own calls, and all of its event's (every attempt shares the correlation id)
        return format_html(
            "{}; {}", run_calls_link(obj.calls_ref, count), calls_link(obj.correlation_id)
        )


RETRYABLE = (RunStatus.FAILED, RunStatus.RETRYING, RunStatus.INTERRUPTED)


def pii_targets(steps: list[FlowRunStep], flow: Flow) -> dict[str, set[str]]:
    """Each step's PII fields: the targets its mapping marks PII (one query for the run)."""
    from flows.models import MappingRule

    slugs = {
        step.get("name"): step.get("mapping")
        for step in flow.steps or []
        if isinstance(step, dict) and step.get("mapping")
    }
    rules = MappingRule.objects.filter(pii=True, mapping__slug__in=set(slugs.values()))
    by_mapping: dict[str, set[str]] = {}
    for slug, target in rules.values_list("mapping__slug", "target"):
        by_mapping.setdefault(slug, set()).add(target)
    return {row.name: by_mapping.get(slugs.get(row.name, ""), set()) for row in steps}


def shown(data, pii) -> str:
    """What a step sent or read, as a person may see it. ``pii``: None shows everything; a set
    masks those fields (what a mapping sent: its PII fields); ``SHAPE`` keeps only the shape,
    numbers and booleans (what a partner answered may hold anyone's personal data)."""
    if data is None:
        return ""
    if pii is SHAPE:
        data = shape(data)
    elif pii is not None and isinstance(data, dict):
        data = masked(data, pii)
    return truncated(json.dumps(data, indent=1, ensure_ascii=False), 2000)


SHAPE = object()


def shape(data):
    if isinstance(data, dict):
        return {key: shape(value) for key, value in data.items()}
    if isinstance(data, list):
        return [shape(value) for value in data[:20]]
    if isinstance(data, str):
        return MASK if data else ""
    return data


def run_steps_table(run: FlowRun, rows: list[FlowRunStep], *, can_see_pii: bool) -> str:
    """A run's steps: status, attempts, duration, what each sent and read (personal data masked
    without the permission) and its API calls (every attempt's: each call row names its step)."""
    calls = list(
        ApiCall.objects.filter(run_ref=run.calls_ref)
        .order_by("created_at", "pk")
        .only("pk", "created_at", "method", "path", "status_code", "step")[:200]
    )
    pii = pii_targets(rows, run.flow)
    body = []
    for row in rows:
        end = row.finished_at or timezone.now()
        mine = [
            c
            for c in calls
            # a call written before calls carried their step: the ones made while it ran
            if c.step == row.name or (not c.step and row.started_at <= c.created_at <= end)
        ]
        # conditions and delays read nothing from a partner: what they record is the hub's own
        reads_partner = row.kind not in ("condition", "delay")
        sent_mask = None if can_see_pii else pii.get(row.name, set())
        read_mask = SHAPE if reads_partner and not can_see_pii else None
        calls_cell = (
            format_html_join(
                mark_safe("<br>"),
                '<a href="{}">{} {} → {}</a>',
                (
                    (
                        reverse("admin:connectors_apicall_change", args=[c.pk]),
                        c.method,
                        c.path,
                        c.status_code or "—",
                    )
                    for c in mine
                ),
            )
            or "—"
        )
        resumes = (
            format_html('<br><span class="help">{} {}</span>', _("resumes"), when(row.resume_at))
            if row.resume_at
            else ""
        )
        body.append(
            format_html(
                '<tr class="hub-step"><td>{}</td><td><strong>{}</strong><br>'
                '<span class="hub-step-kind">{}</span></td><td>{}{}</td><td>{}</td><td>{}</td>'
                "<td><pre>{}</pre></td><td><pre>{}</pre></td><td>{}</td></tr>",
                row.position + 1,
                row.name,
                row.kind,
                status("flow_step", row.status, row.get_status_display()),
                resumes,
                row.attempts,
                f"{row.duration_ms} ms",
                shown(row.sent, sent_mask),
                shown(row.result, read_mask),
                calls_cell,
            )
        )
        if row.error:
            # the error on a row of its own, the table's width: a partner's message is long
            body.append(
                format_html(
                    '<tr class="hub-step-error"><td></td><td colspan="7">{}: {}</td></tr>',
                    _("Error"),
                    truncated(row.error, 300),
                )
            )
    head = format_html_join(
        "",
        "<th>{}</th>",
        (
            (h,)
            for h in (
                "#",
                _("Step"),
                _("Status"),
                _("Attempts"),
                _("Duration"),
                _("Sent"),
                _("Read"),
                _("API calls"),
            )
        ),
    )
    note = "" if can_see_pii else _("Personal data is masked: it needs the PII permission.")
    return format_html(
        '<table class="hub-run-steps"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>'
        '<p class="help">{}</p>',
        head,
        format_html_join("", "{}", ((row,) for row in body)),
        note,
    )


def event_flow_runs(event) -> str:
    """Links to an event's flow runs, for the event page."""
    runs = list(event.flow_runs.select_related("flow").order_by("pk")[:20])
    if not runs:
        return "—"
    return format_html_join(
        ", ",
        '<a href="{}">{} #{} ({})</a>',
        (
            (reverse("admin:flows_flowrun_change", args=[r.pk]), r.flow.slug, r.pk, r.status)
            for r in runs
        ),
    )
