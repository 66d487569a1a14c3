"""Field mappings, flows ("when this happens, do that") and the record of each flow run."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from flows.mapping import RuleSpec, check_rule
from flows.transforms import registry as transforms

PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


class Mapping(models.Model):
    """An ordered list of rules from source fields to target fields. Only mapped fields leave
    the hub."""

    slug = models.SlugField(
        max_length=80,
        unique=True,
        help_text=_("Stable name, used by flows and in files."),
        verbose_name=_("slug"),
    )
    name = models.CharField(max_length=120, help_text=_("Human name."), verbose_name=_("name"))
    description = models.TextField(
        blank=True, help_text=_("What it maps, for the team."), verbose_name=_("description")
    )
    created_at = models.DateTimeField(
        auto_now_add=True, help_text=_("Created at."), verbose_name=_("created at")
    )
    updated_at = models.DateTimeField(
        auto_now=True, help_text=_("Last changed at."), verbose_name=_("updated at")
    )

    class Meta:
        verbose_name = _("mapping")
        verbose_name_plural = _("mappings")
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name or self.slug

    def specs(self) -> list[RuleSpec]:
        return [rule.spec() for rule in self.rules.all()]

    def target_paths(self) -> set[str]:
        """Every target path and each of its parents ("address.city" gives "address" too)."""
        paths: set[str] = set()
        for rule in self.rules.all():
            parts = rule.target.split(".")
            paths.update(".".join(parts[: i + 1]) for i in range(len(parts)))
        return paths


def transform_choices():
    return [(name, name) for name in sorted(transforms)]


class MappingRule(models.Model):
    mapping = models.ForeignKey(
        Mapping,
        on_delete=models.CASCADE,
        related_name="rules",
        help_text=_("The mapping."),
        verbose_name=_("mapping"),
    )
    position = models.PositiveIntegerField(
        default=0,
        help_text=_("Rules apply in this order (and are named by it in errors)."),
        verbose_name=_("position"),
    )
    source = models.CharField(
        max_length=300,
        blank=True,
        help_text=_(
            "Dotted path in the incoming data, list indexes allowed: "
            "data.object.customer_details.email, items.0.sku. Empty for constant and template."
        ),
        verbose_name=_("source"),
    )
    target = models.CharField(
        max_length=300,
        help_text=_(
            "Dotted path in the data sent to the partner; nested objects are created: "
            "properties.email."
        ),
        verbose_name=_("target"),
    )
    transform = models.CharField(
        max_length=40,
        default="copy",
        choices=transform_choices,
        help_text=_(
            "How the value is changed on the way (docs/flows.md, section Transforms, lists them)."
        ),
        verbose_name=_("transform"),
    )
    args = models.JSONField(
        default=dict,
        blank=True,
        help_text=_('The transform\'s arguments as JSON, e.g. {"region": "FR"} for phone_e164.'),
        verbose_name=_("args"),
    )
    default = models.JSONField(
        null=True,
        blank=True,
        help_text=_('Used when the source is missing or empty (JSON: "text", 0, true…).'),
        verbose_name=_("default"),
    )
    required = models.BooleanField(
        default=False,
        help_text=_("A missing required field fails the run (permanently: a person must look)."),
        verbose_name=_("required"),
    )
    pii = models.BooleanField(
        "PII",
        default=False,
        help_text=_("Personal data (GDPR). Shown in the mapping sheet and the preview."),
    )

    class Meta:
        verbose_name = _("mapping rule")
        verbose_name_plural = _("mapping rules")
        ordering = ["mapping", "position", "pk"]

    def __str__(self) -> str:
        return f"{self.source or '—'} → {self.target}"

    def spec(self) -> RuleSpec:
        return RuleSpec(
            position=self.position,
            source=self.source,
            target=self.target,
            transform=self.transform,
            args=self.args or {},
            default=self.default,
            required=self.required,
            pii=self.pii,
        )

    def clean(self):
        problems = check_rule(self.spec())
        if problems:
            raise ValidationError(problems)


class TriggerKind(models.TextChoices):
    WEBHOOK = "webhook", _("Webhook event")
    SCHEDULE = "schedule", _("Schedule (cron)")
    MANUAL = "manual", _("Manual (admin or API)")
    SYNC = "sync", _("Sync job (each record of a scheduled sync)")


class Flow(models.Model):
    """When a trigger fires (and the condition holds), map the data and act on a connection:
    call an operation, or upsert a record without duplicates (look up by a match key, then
    update or create with an idempotency key)."""

    slug = models.SlugField(
        max_length=80, unique=True, help_text=_("Stable name (API, files)."), verbose_name=_("slug")
    )
    name = models.CharField(max_length=120, help_text=_("Human name."), verbose_name=_("name"))
    description = models.TextField(
        blank=True, help_text=_("What it does, for the team."), verbose_name=_("description")
    )
    enabled = models.BooleanField(
        default=True, help_text=_("A disabled flow never runs."), verbose_name=_("enabled")
    )
    trigger = models.CharField(
        max_length=20,
        choices=TriggerKind.choices,
        help_text=_("What starts a run."),
        verbose_name=_("trigger"),
    )
    endpoint = models.ForeignKey(
        "webhooks.WebhookEndpoint",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="flows",
        help_text=_("Webhook trigger: the endpoint whose events start the flow."),
        verbose_name=_("endpoint"),
    )
    event_type = models.CharField(
        max_length=200,
        blank=True,
        default="*",
        help_text=_('Webhook trigger: event type, "*" wildcards allowed (payment.*).'),
        verbose_name=_("event type"),
    )
    cron = models.CharField(
        max_length=100,
        blank=True,
        help_text=_(
            "Schedule trigger: a cron expression (minute hour day month weekday), "
            "run by the workers."
        ),
        verbose_name=_("cron"),
    )
    condition = models.JSONField(
        default=list,
        blank=True,
        help_text=_(
            "Optional: all must hold, on the incoming data. "
            '[{"path": "data.status", "op": "eq", "value": "succeeded"}]; ops: eq, ne, in, '
            "not_in, gt, gte, lt, lte, contains, exists, missing."
        ),
        verbose_name=_("condition"),
    )
    connection = models.ForeignKey(
        "connectors.Connection",
        on_delete=models.PROTECT,
        related_name="flows",
        help_text=_("The connection the action calls."),
        verbose_name=_("connection"),
    )
    mapping = models.ForeignKey(
        Mapping,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="flows",
        help_text=_(
            "Builds the body: only its fields are sent. A flow of several steps names a mapping "
            "in each step instead."
        ),
        verbose_name=_("mapping"),
    )
    method = models.CharField(
        max_length=10,
        default="POST",
        help_text=_("The action's (or the create's) method."),
        verbose_name=_("method"),
    )
    path = models.CharField(
        max_length=500,
        blank=True,
        help_text=_(
            "The action's (or the create's) path, relative to the connection's base "
            "URL; {field} is filled from the mapped data, URL-encoded."
        ),
        verbose_name=_("path"),
    )
    match_key = models.CharField(
        max_length=200,
        blank=True,
        help_text=_(
            "Upsert: the mapped field that identifies the record (email, external id). "
            "Empty: the action is a plain call."
        ),
        verbose_name=_("match key"),
    )
    lookup_path = models.CharField(
        max_length=500,
        blank=True,
        help_text=_("Upsert: GET path that finds the record, e.g. /contacts?email={email}."),
        verbose_name=_("lookup path"),
    )
    lookup_results = models.CharField(
        max_length=200,
        blank=True,
        default="results",
        help_text=_(
            "Upsert: where the found records are in the lookup's answer (a list, or one "
            "object). Empty: the answer itself."
        ),
        verbose_name=_("lookup results"),
    )
    record_id_field = models.CharField(
        max_length=100,
        default="id",
        help_text=_(
            "Upsert: the partner's id field in a record (used as {id} in the update path)."
        ),
        verbose_name=_("record ID field"),
    )
    update_method = models.CharField(
        max_length=10,
        default="PATCH",
        help_text=_("Upsert: the method that updates a record."),
        verbose_name=_("update method"),
    )
    update_path = models.CharField(
        max_length=500,
        blank=True,
        help_text=_("Upsert: the path that updates a record, e.g. /contacts/{id}."),
        verbose_name=_("update path"),
    )
    idempotency_key_template = models.CharField(
        max_length=300,
        default="flow:{flow}:{trigger}",
        help_text=_(
            "The key every create carries (partner header and local record): {flow}, "
            "{trigger} (the event or request that started the run), {event_id}, {endpoint}, "
            "{data.email} (any mapped field). The same trigger gives the same key, so a retry "
            "never creates twice."
        ),
        verbose_name=_("idempotency key template"),
    )
    required_scopes = models.JSONField(
        default=list,
        blank=True,
        help_text=_(
            "Scopes the action needs; the console warns when the connection was not "
            "granted them (least privilege)."
        ),
        verbose_name=_("required scopes"),
    )
    steps = models.JSONField(
        default=list,
        blank=True,
        help_text=_(
            "A workflow: the ordered steps (fetch, upsert, call, condition, delay, python) "
            "that replace the single action above; docs/workflows.md describes each. Empty: "
            "the flow is its one action."
        ),
        verbose_name=_("steps"),
    )
    correlation_key = models.CharField(
        max_length=300,
        blank=True,
        help_text=_(
            "Workflows: the dotted path in the trigger's data that names what a run is about "
            "(a booking's id, data.object.id). A later event with the same value can cancel "
            "the run's pending steps."
        ),
        verbose_name=_("correlation key"),
    )
    cancel_event_type = models.CharField(
        max_length=200,
        blank=True,
        help_text=_(
            "Workflows: the event type, on the same endpoint, that cancels the pending steps "
            'of the runs it names ("booking.cancelled"; "*" wildcards allowed).'
        ),
        verbose_name=_("cancelled by event type"),
    )
    cancel_key_path = models.CharField(
        max_length=300,
        blank=True,
        help_text=_(
            "Workflows: where the cancelling event holds the correlation value. Empty: the "
            "same path as the correlation key."
        ),
        verbose_name=_("cancel key path"),
    )
    created_at = models.DateTimeField(
        auto_now_add=True, help_text=_("Created at."), verbose_name=_("created at")
    )
    updated_at = models.DateTimeField(
        auto_now=True, help_text=_("Last changed at."), verbose_name=_("updated at")
    )

    class Meta:
        verbose_name = _("flow")
        verbose_name_plural = _("flows")
        ordering = ["slug"]
        permissions = [("run_flow", "Can run a flow by hand")]

    def __str__(self) -> str:
        return self.name or self.slug

    @property
    def is_upsert(self) -> bool:
        return bool(self.match_key)

    @property
    def is_workflow(self) -> bool:
        return bool(self.steps)

    def step_sends(self) -> list[tuple[str, str]]:
        """A workflow's (connection slug, mapping slug) pairs: where each step's mapping sends
        its fields (a step that names no connection uses the flow's). For the governance
        checks and the processing register."""
        return [
            (step.get("connection") or self.connection.slug, step["mapping"])
            for step in self.steps or []
            if isinstance(step, dict)
            and step.get("mapping")
            and step.get("kind") in ("fetch", "upsert", "call")
        ]

    def clean(self):
        from flows.conditions import check_condition

        errors: dict[str, str] = {}
        if self.steps:
            from flows.steps import check_steps

            problems = check_steps(self.steps)
            if problems:
                errors["steps"] = problems
            if (self.cancel_event_type or self.cancel_key_path) and not self.correlation_key:
                errors["correlation_key"] = _(
                    "A cancelling event needs the correlation key it cancels by."
                )
            problems = check_condition(self.condition)
            if problems:
                errors["condition"] = "; ".join(problems)
            if errors:
                raise ValidationError(errors)
            return
        if not self.mapping_id:
            errors["mapping"] = _("A flow of one action needs its mapping (or steps).")
        if not self.path:
            errors["path"] = _("A flow of one action needs its path (or steps).")
        if self.trigger == TriggerKind.WEBHOOK and not self.endpoint_id:
            errors["endpoint"] = _("A webhook flow needs its endpoint.")
        if self.trigger == TriggerKind.SCHEDULE:
            from croniter import croniter

            if not croniter.is_valid(self.cron or ""):
                errors["cron"] = _('"%(cron)s" is not a cron expression (e.g. "0 2 * * *").') % {
                    "cron": self.cron
                }
        problems = check_condition(self.condition)
        if problems:
            errors["condition"] = "; ".join(problems)
        self.method = (self.method or "").upper()
        self.update_method = (self.update_method or "").upper()
        if self.method not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            errors["method"] = _("One of GET, POST, PUT, PATCH, DELETE.")
        if self.is_upsert:
            if not self.lookup_path:
                errors["lookup_path"] = _("An upsert needs a lookup path to find the record first.")
            if not self.update_path:
                errors["update_path"] = _("An upsert needs an update path (e.g. /contacts/{id}).")
        if self.mapping_id:
            targets = self.mapping.target_paths()
            for name, extra in (
                ("path", set()),
                ("lookup_path", set()),
                ("update_path", {"id"}),
            ):
                unknown = self.unknown_placeholders(getattr(self, name), targets | extra)
                if unknown:
                    errors[name] = _(
                        'unknown field "%(field)s" (the mapping produces: %(targets)s)'
                    ) % {"field": unknown[0], "targets": ", ".join(sorted(targets)) or _("nothing")}
            if self.is_upsert and self.match_key not in targets:
                errors["match_key"] = _('unknown field "%(field)s": not a mapped target') % {
                    "field": self.match_key
                }
        if errors:
            raise ValidationError(errors)

    @staticmethod
    def unknown_placeholders(template: str, known: set[str]) -> list[str]:
        return [name for name in PLACEHOLDER.findall(template or "") if name not in known]


# What a person configures on a mapping, a rule and a flow, grouped as the console shows them;
# the console's forms and integrations as code both read these lists (one place).
MAPPING_SETTINGS: list[tuple[str | None, list[str]]] = [(None, ["slug", "name", "description"])]
RULE_SETTINGS = ["source", "target", "transform", "args", "default", "required", "pii"]
FLOW_SETTINGS: list[tuple[str | None, list[str]]] = [
    (None, ["slug", "name", "description", "enabled"]),
    ("Trigger", ["trigger", "endpoint", "event_type", "cron", "condition"]),
    (
        "Action",
        ["connection", "mapping", "method", "path", "idempotency_key_template", "required_scopes"],
    ),
    (
        "Upsert without duplicates",
        [
            "match_key",
            "lookup_path",
            "lookup_results",
            "record_id_field",
            "update_method",
            "update_path",
        ],
    ),
    ("Workflow", ["steps", "correlation_key", "cancel_event_type", "cancel_key_path"]),
]


class RunStatus(models.TextChoices):
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    SKIPPED = "skipped", _("Skipped (condition not met)")
    RETRYING = "retrying", _("Transient error (retried)")
    FAILED = "failed", _("Failed (a person must look)")
    INTERRUPTED = "interrupted", _("Interrupted (its worker was lost; the event is retried)")
    WAITING = "waiting", _("Waiting (a delay step: resumes at its time)")
    CANCELLED = "cancelled", _("Cancelled (its pending steps will not run)")


class RunOutcome(models.TextChoices):
    NONE = "", _("—")
    CREATED = "created", _("Created")
    UPDATED = "updated", _("Updated")
    UNCHANGED = "unchanged", _("Unchanged (already up to date)")
    CALLED = "called", _("Called")


class FlowRun(models.Model):
    """One run of a flow: what started it, how it ended, and its correlation id (which links
    its API calls)."""

    flow = models.ForeignKey(
        Flow,
        on_delete=models.CASCADE,
        related_name="runs",
        help_text=_("The flow."),
        verbose_name=_("flow"),
    )
    trigger = models.CharField(
        max_length=20,
        choices=TriggerKind.choices,
        help_text=_("What started the run."),
        verbose_name=_("trigger"),
    )
    trigger_ref = models.CharField(
        max_length=300,
        blank=True,
        help_text=_(
            "The event (endpoint:event id), the API request's idempotency key, or the "
            "scheduled time."
        ),
        verbose_name=_("trigger ref"),
    )
    event = models.ForeignKey(
        "webhooks.WebhookEvent",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="flow_runs",
        help_text=_("The webhook event that started it."),
        verbose_name=_("event"),
    )
    status = models.CharField(
        max_length=20,
        choices=RunStatus.choices,
        default=RunStatus.RUNNING,
        help_text=_("Status."),
        verbose_name=_("status"),
    )
    outcome = models.CharField(
        max_length=20,
        choices=RunOutcome.choices,
        blank=True,
        default="",
        help_text=_("What the action did at the partner."),
        verbose_name=_("outcome"),
    )
    record_id = models.CharField(
        max_length=200,
        blank=True,
        help_text=_("The partner's id of the record created/updated."),
        verbose_name=_("record ID"),
    )
    started_at = models.DateTimeField(
        default=timezone.now, db_index=True, help_text=_("Start."), verbose_name=_("started at")
    )
    lease_until = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_(
            "While running: its worker holds it until then. A running run past it was "
            "lost (worker killed) and is marked interrupted."
        ),
        verbose_name=_("lease until"),
    )
    finished_at = models.DateTimeField(
        null=True, blank=True, help_text=_("End."), verbose_name=_("finished at")
    )
    duration_ms = models.PositiveIntegerField(
        default=0, help_text=_("Duration."), verbose_name=_("duration ms")
    )
    error = models.TextField(
        blank=True,
        help_text=_("What went wrong (no secrets, no payload)."),
        verbose_name=_("error"),
    )
    correlation_id = models.CharField(
        max_length=100,
        db_index=True,
        help_text=_("Shared with the event and the API calls."),
        verbose_name=_("correlation ID"),
    )
    current_step = models.CharField(
        max_length=80,
        blank=True,
        help_text=_("Workflows: the step the run is at (or ended at)."),
        verbose_name=_("current step"),
    )
    resume_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_(
            "Workflows: when a waiting run resumes. Set once a run has waited (or was retried "
            "by hand): from then on the hub resumes it itself, its trigger being done."
        ),
        verbose_name=_("resumes at"),
    )
    attempts = models.PositiveIntegerField(
        default=0,
        help_text=_("Workflows: how many times the run was started or resumed."),
        verbose_name=_("attempts"),
    )
    cancel_key = models.CharField(
        max_length=200,
        blank=True,
        help_text=_("Workflows: the value of the flow's correlation key for this run."),
        verbose_name=_("cancel key"),
    )
    cancelled_by = models.CharField(
        max_length=300,
        blank=True,
        help_text=_("Who cancelled the run: the event (endpoint:event id), or the person."),
        verbose_name=_("cancelled by"),
    )
    trigger_data = models.JSONField(
        null=True,
        blank=True,
        help_text=_(
            "Workflows: the trigger's data, kept while the run may resume (a delay outlives "
            "the event's body); purged with the run."
        ),
        verbose_name=_("trigger data"),
    )

    class Meta:
        verbose_name = _("flow run")
        verbose_name_plural = _("flow runs")
        ordering = ["-started_at", "-pk"]
        indexes = [
            models.Index(fields=["flow", "-started_at"]),
            # the console at a million runs: the list in its order, the status filter, and
            # exact search by the partner's record id or the trigger's reference
            models.Index(fields=["started_at", "id"], name="flowrun_started"),
            models.Index(fields=["status", "started_at", "id"], name="flowrun_status_started"),
            models.Index(fields=["record_id"], name="flowrun_record_id"),
            models.Index(fields=["trigger_ref"], name="flowrun_trigger_ref"),
            # the sweeper's and the console's "what is running" (a handful of rows)
            models.Index(
                fields=["lease_until"],
                name="flowrun_running_lease",
                condition=models.Q(status="running"),
            ),
            # workflows: the waiting runs by the time they resume, and cancellation by key
            models.Index(
                fields=["resume_at"],
                name="flowrun_waiting_resume",
                condition=models.Q(status="waiting"),
            ),
            models.Index(
                fields=["flow", "cancel_key"],
                name="flowrun_cancel_key",
                condition=~models.Q(cancel_key=""),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.flow} #{self.pk} {self.status}"

    @property
    def calls_ref(self) -> str:
        """What this run's API call rows carry in ``run_ref``."""
        return f"flow_run:{self.pk}"


class StepStatus(models.TextChoices):
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    SKIPPED = "skipped", _("Skipped")
    WAITING = "waiting", _("Waiting")
    RETRYING = "retrying", _("Transient error (retried)")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


class FlowRunStep(models.Model):
    """One step of a workflow run, written as it starts and as it ends: a step that succeeded
    is never executed again when the run resumes."""

    run = models.ForeignKey(
        FlowRun,
        on_delete=models.CASCADE,
        related_name="steps",
        help_text=_("The run."),
        verbose_name=_("run"),
    )
    position = models.PositiveIntegerField(
        help_text=_("The step's place in the flow (0 is the first)."), verbose_name=_("position")
    )
    name = models.CharField(max_length=80, help_text=_("The step's name."), verbose_name=_("name"))
    kind = models.CharField(max_length=20, help_text=_("The step's kind."), verbose_name=_("kind"))
    status = models.CharField(
        max_length=20,
        choices=StepStatus.choices,
        default=StepStatus.RUNNING,
        help_text=_("Status."),
        verbose_name=_("status"),
    )
    attempts = models.PositiveIntegerField(
        default=0, help_text=_("How many times it was executed."), verbose_name=_("attempts")
    )
    started_at = models.DateTimeField(
        default=timezone.now,
        help_text=_("Start of its last attempt."),
        verbose_name=_("started at"),
    )
    finished_at = models.DateTimeField(
        null=True, blank=True, help_text=_("End."), verbose_name=_("finished at")
    )
    duration_ms = models.PositiveIntegerField(
        default=0, help_text=_("Duration of its last attempt."), verbose_name=_("duration ms")
    )
    resume_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("A delay step: when it ends."),
        verbose_name=_("resumes at"),
    )
    sent = models.JSONField(
        null=True,
        blank=True,
        help_text=_("What it sent: its mapping's fields only."),
        verbose_name=_("sent"),
    )
    result = models.JSONField(
        null=True,
        blank=True,
        help_text=_("What it read or returned, which later steps read as steps.(its name)."),
        verbose_name=_("result"),
    )
    error = models.TextField(
        blank=True, help_text=_("What went wrong (no secrets)."), verbose_name=_("error")
    )

    class Meta:
        verbose_name = _("run step")
        verbose_name_plural = _("run steps")
        ordering = ["run", "position"]
        constraints = [
            models.UniqueConstraint(fields=["run", "name"], name="flowrunstep_once"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind}) {self.status}"


class FlowCancellation(models.Model):
    """A cancelling event, kept for a while: webhooks arrive out of order, and a cancellation
    processed before the event that starts its run still cancels that run when it starts."""

    flow = models.ForeignKey(
        Flow,
        on_delete=models.CASCADE,
        related_name="cancellations",
        help_text=_("The workflow whose runs this cancellation names."),
        verbose_name=_("flow"),
    )
    key = models.CharField(
        max_length=200,
        help_text=_("The correlation value the cancelling event named."),
        verbose_name=_("key"),
    )
    cancelled_by = models.CharField(
        max_length=300,
        help_text=_("The cancelling event (endpoint:event id)."),
        verbose_name=_("cancelled by"),
    )
    received_at = models.DateTimeField(
        default=timezone.now,
        help_text=_(
            "When it was processed: a run with this key that starts within a day of it is "
            "cancelled before its first step."
        ),
        verbose_name=_("received at"),
    )

    class Meta:
        verbose_name = _("flow cancellation")
        verbose_name_plural = _("flow cancellations")
        constraints = [
            models.UniqueConstraint(fields=["flow", "key"], name="flowcancellation_flow_key")
        ]
        indexes = [models.Index(fields=["received_at"], name="flowcancellation_received")]

    def __str__(self) -> str:
        return f"{self.flow_id}:{self.key}"
