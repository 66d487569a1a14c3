"""Monitoring's rows: rollups of what happened, incidents, notification channels and what
each channel was sent, and per-connection overrides of the rules."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from monitoring.choices import (
    ChannelKind,
    DeliveryStatus,
    IncidentState,
    NotificationKind,
    Severity,
    TargetType,
)

MINUTE = 60
HOUR = 3600
RESOLUTIONS = [(MINUTE, "minute"), (HOUR, "hour")]

# Upper bounds (ms) of the latency histogram's buckets; the last bucket is everything above.
LATENCY_BUCKETS_MS = (25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)


class Rollup(models.Model):
    """What every rollup row has: its bucket, and whether it is still recounted."""

    start = models.DateTimeField(
        help_text=_("Start of the minute (or hour)."), verbose_name=_("start")
    )
    resolution = models.PositiveIntegerField(
        choices=RESOLUTIONS,
        default=MINUTE,
        help_text=_("Length of the bucket, in seconds."),
        verbose_name=_("resolution"),
    )
    final = models.BooleanField(
        default=False,
        help_text=_("No longer recomputed; its counts are in the metrics' running totals."),
        verbose_name=_("final"),
    )

    class Meta:
        abstract = True


class CallRollup(Rollup):
    """The calls of one connection in one minute (or hour): counts by outcome and a latency
    histogram. The dashboard, the rules and ``/metrics`` read these, never the call log."""

    connection = models.ForeignKey(
        "connectors.Connection",
        on_delete=models.CASCADE,
        related_name="+",
        help_text=_("The connection that made the calls."),
        verbose_name=_("connection"),
    )
    calls = models.PositiveIntegerField(
        default=0, help_text=_("Attempts in the bucket."), verbose_name=_("calls")
    )
    ok = models.PositiveIntegerField(
        default=0, help_text=_("Answered 1xx, 2xx or 3xx."), verbose_name=_("ok")
    )
    client_errors = models.PositiveIntegerField(
        default=0, help_text=_("Answered 4xx but 429."), verbose_name=_("client errors")
    )
    rate_limited = models.PositiveIntegerField(
        default=0, help_text=_("Answered 429."), verbose_name=_("rate limited")
    )
    server_errors = models.PositiveIntegerField(
        default=0, help_text=_("Answered 5xx."), verbose_name=_("server errors")
    )
    network_errors = models.PositiveIntegerField(
        default=0,
        help_text=_("No answer: timeout, connection refused, DNS."),
        verbose_name=_("network errors"),
    )
    not_sent = models.PositiveIntegerField(
        default=0,
        help_text=_(
            "Refused by the hub before reaching the partner: circuit open, connection "
            "busy, URL blocked."
        ),
        verbose_name=_("not sent"),
    )
    duration_ms_sum = models.PositiveBigIntegerField(
        default=0, help_text=_("Sum of durations."), verbose_name=_("duration ms sum")
    )
    latency = models.JSONField(
        default=list,
        help_text=_(
            "Calls per latency bucket (upper bounds 25, 50, 100, 250, 500, 1000, 2500, "
            "5000, 10000 ms, then above)."
        ),
        verbose_name=_("latency"),
    )

    class Meta:
        verbose_name = _("call rollup")
        verbose_name_plural = _("call rollups")
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "resolution", "start"], name="callrollup_unique"
            )
        ]
        indexes = [models.Index(fields=["resolution", "start"], name="callrollup_start")]

    def __str__(self) -> str:
        return f"{self.connection_id} @ {self.start:%Y-%m-%d %H:%M}"

    @property
    def failed(self) -> int:
        """Calls that reached for the partner and did not succeed."""
        return self.server_errors + self.network_errors + self.rate_limited + self.client_errors


class EventRollup(Rollup):
    """One webhook endpoint in one minute (or hour): deliveries received, processing attempts
    by outcome, and deliveries refused (signature, timestamp, IP, size)."""

    endpoint = models.ForeignKey(
        "webhooks.WebhookEndpoint",
        on_delete=models.CASCADE,
        related_name="+",
        help_text=_("The endpoint."),
        verbose_name=_("endpoint"),
    )
    received = models.PositiveIntegerField(
        default=0, help_text=_("Events stored."), verbose_name=_("received")
    )
    processed = models.PositiveIntegerField(
        default=0,
        help_text=_("Attempts that processed one (a handler or a flow took it)."),
        verbose_name=_("processed"),
    )
    unhandled = models.PositiveIntegerField(
        default=0,
        help_text=_("Attempts that ended with nothing to take the event (no handler, no flow)."),
        verbose_name=_("unhandled"),
    )
    retried = models.PositiveIntegerField(
        default=0,
        help_text=_("Attempts that failed transiently (a retry is scheduled)."),
        verbose_name=_("retried"),
    )
    failed = models.PositiveIntegerField(
        default=0,
        help_text=_("Attempts that failed for good (failed, dead, lost worker)."),
        verbose_name=_("failed"),
    )
    refused = models.PositiveIntegerField(
        default=0, help_text=_("Deliveries refused."), verbose_name=_("refused")
    )

    class Meta:
        verbose_name = _("event rollup")
        verbose_name_plural = _("event rollups")
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "resolution", "start"], name="eventrollup_unique"
            )
        ]
        indexes = [models.Index(fields=["resolution", "start"], name="eventrollup_start")]

    def __str__(self) -> str:
        return f"{self.endpoint_id} @ {self.start:%Y-%m-%d %H:%M}"


class RunningTotal(models.Model):
    """Monotonic totals for ``/metrics`` (a counter must never go down when old rollups are
    compacted or purged): the finalised buckets are added here once, as they become final."""

    key = models.CharField(
        max_length=80, unique=True, help_text=_("connection:12, endpoint:3…"), verbose_name=_("key")
    )
    data = models.JSONField(
        default=dict, help_text=_("The totals, by counter name."), verbose_name=_("data")
    )
    updated_at = models.DateTimeField(
        auto_now=True, help_text=_("Last change."), verbose_name=_("updated at")
    )

    class Meta:
        verbose_name = _("running total")
        verbose_name_plural = _("running totals")

    def __str__(self) -> str:
        return self.key


class Incident(models.Model):
    """A problem, grouped by (rule, target, error class): what happened, since when, how often,
    and who is on it. Opened by the monitoring pass, resolved by it when the signal clears."""

    key = models.CharField(
        max_length=255,
        unique=True,
        help_text=_(
            "rule|target type:id|error class: one incident per problem, re-opened when it returns."
        ),
        verbose_name=_("key"),
    )
    rule = models.CharField(
        max_length=60, db_index=True, help_text=_("The rule that found it."), verbose_name=_("rule")
    )
    target_type = models.CharField(
        max_length=20,
        choices=TargetType.choices,
        help_text=_("What is affected."),
        verbose_name=_("target type"),
    )
    target_id = models.BigIntegerField(
        null=True, blank=True, help_text=_("Its primary key."), verbose_name=_("target ID")
    )
    target_label = models.CharField(
        max_length=200, help_text=_("Its name, for messages."), verbose_name=_("target label")
    )
    connection = models.ForeignKey(
        "connectors.Connection",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text=_("The connection concerned (routing, owner, affected calls)."),
        verbose_name=_("connection"),
    )
    endpoint = models.ForeignKey(
        "webhooks.WebhookEndpoint",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text=_("The webhook endpoint concerned (affected events)."),
        verbose_name=_("endpoint"),
    )
    error_class = models.CharField(
        max_length=60,
        blank=True,
        help_text=_("The kind of failure (503, timeout, expiry…)."),
        verbose_name=_("error class"),
    )
    state = models.CharField(
        max_length=20,
        choices=IncidentState.choices,
        default=IncidentState.OPEN,
        db_index=True,
        help_text=_(
            "Open, acknowledged by a person, resolved (the signal cleared), or ignored "
            "(it may come back without notifying)."
        ),
        verbose_name=_("state"),
    )
    severity = models.CharField(
        max_length=10,
        choices=Severity.choices,
        default=Severity.WARNING,
        help_text=_("How bad."),
        verbose_name=_("severity"),
    )
    level = models.PositiveSmallIntegerField(
        default=0,
        help_text=_(
            "Graded rules: the highest level reached (50, 70, 90, 100 % of a threshold; "
            "30, 7, 1 days before an expiry)."
        ),
        verbose_name=_("level"),
    )
    summary = models.CharField(
        max_length=500, help_text=_("What happened, in words."), verbose_name=_("summary")
    )
    advice = models.CharField(
        max_length=500, blank=True, help_text=_("What to do."), verbose_name=_("advice")
    )
    details = models.JSONField(
        default=dict, blank=True, help_text=_("The figures behind it."), verbose_name=_("details")
    )
    first_seen_at = models.DateTimeField(
        default=timezone.now, help_text=_("When it first opened."), verbose_name=_("first seen at")
    )
    opened_at = models.DateTimeField(
        default=timezone.now, help_text=_("When it last (re)opened."), verbose_name=_("opened at")
    )
    last_seen_at = models.DateTimeField(
        default=timezone.now, help_text=_("Last pass that saw it."), verbose_name=_("last seen at")
    )
    occurrences = models.PositiveIntegerField(
        default=1, help_text=_("Passes that saw it."), verbose_name=_("occurrences")
    )
    times_opened = models.PositiveIntegerField(
        default=1, help_text=_("Opened, then re-opened."), verbose_name=_("times opened")
    )
    clear_since = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_(
            "The signal has been absent since then; resolved once it stays absent long "
            "enough (hysteresis: a flapping signal does not storm)."
        ),
        verbose_name=_("clear since"),
    )
    resolved_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When it resolved."), verbose_name=_("resolved at")
    )
    acknowledged_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When acknowledged."), verbose_name=_("acknowledged at")
    )
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_("Who acknowledged or ignored it."),
        verbose_name=_("acknowledged by"),
    )
    notified_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("When the channels were last told (cooldown)."),
        verbose_name=_("notified at"),
    )
    notified_level = models.PositiveSmallIntegerField(
        default=0,
        help_text=_("The level the channels were last told of (escalation)."),
        verbose_name=_("notified level"),
    )
    notified_open = models.BooleanField(
        default=False,
        help_text=_("The channels were told it opened (so they are told it resolved)."),
        verbose_name=_("notified open"),
    )

    class Meta:
        verbose_name = _("incident")
        verbose_name_plural = _("incidents")
        ordering = ["-opened_at", "-id"]
        indexes = [models.Index(fields=["state", "-opened_at"], name="incident_state")]
        permissions = [("manage_incident", "Can acknowledge, ignore and retry incidents")]

    def __str__(self) -> str:
        return self.summary[:80]

    @property
    def is_active(self) -> bool:
        return self.state in (IncidentState.OPEN, IncidentState.ACKNOWLEDGED)


class Channel(models.Model):
    """Where notifications go: an email list, a Slack or Teams incoming webhook, or the site's
    own systems through a signed webhook. Calls out through a connection of the hub (timeouts,
    SSRF guard, call log)."""

    slug = models.SlugField(
        max_length=60, unique=True, help_text=_("Stable name (CLI, files)."), verbose_name=_("slug")
    )
    name = models.CharField(
        max_length=120, help_text=_("Human name, e.g. 'Ops on Slack'."), verbose_name=_("name")
    )
    kind = models.CharField(
        max_length=20,
        choices=ChannelKind.choices,
        help_text=_("How it sends."),
        verbose_name=_("kind"),
    )
    enabled = models.BooleanField(
        default=True, help_text=_("A disabled channel sends nothing."), verbose_name=_("enabled")
    )
    connection = models.ForeignKey(
        "connectors.Connection",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text=_(
            "Slack, Teams, webhook: the connection that carries the calls (base URL such "
            "as https://hooks.slack.com, timeouts). The secret part of an incoming-webhook URL is "
            "its credential of kind 'Other'; a signed webhook's key is its 'Webhook signing "
            "secret'."
        ),
        verbose_name=_("connection"),
    )
    path = models.CharField(
        max_length=300,
        blank=True,
        help_text=_(
            "Signed webhook: the path on the connection to post to (e.g. /hub-alerts). "
            "Slack and Teams keep their path in the credential, since it is the secret."
        ),
        verbose_name=_("path"),
    )
    recipients = models.TextField(
        blank=True,
        help_text=_(
            "Email: addresses, one per line or comma-separated. The owner of the "
            "connection concerned is added when it is an email address."
        ),
        verbose_name=_("recipients"),
    )
    rules = models.JSONField(
        default=list,
        blank=True,
        help_text=_('Rules routed here, e.g. ["error_rate", "expiry"]; empty: every rule.'),
        verbose_name=_("rules"),
    )
    connections = models.ManyToManyField(
        "connectors.Connection",
        blank=True,
        related_name="+",
        help_text=_("Connections routed here; none selected: every connection (and the hub)."),
        verbose_name=_("connections"),
    )
    min_severity = models.CharField(
        max_length=10,
        choices=Severity.choices,
        default=Severity.WARNING,
        help_text=_("Only incidents at least this severe."),
        verbose_name=_("min severity"),
    )
    cooldown_minutes = models.PositiveIntegerField(
        default=60,
        help_text=_(
            "At most one message per incident in this time, unless it escalates or resolves."
        ),
        verbose_name=_("cooldown minutes"),
    )
    digest = models.BooleanField(
        default=False,
        help_text=_("Send one daily digest of the day's incidents instead of a message each."),
        verbose_name=_("digest"),
    )
    last_sent_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text=_("Sent."), verbose_name=_("last sent at")
    )
    last_failure_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text=_("Its last failure."),
        verbose_name=_("last failure at"),
    )
    last_error = models.CharField(
        max_length=500,
        blank=True,
        editable=False,
        help_text=_("Why it last failed (no secret)."),
        verbose_name=_("last error"),
    )
    consecutive_failures = models.PositiveIntegerField(
        default=0,
        editable=False,
        help_text=_("Failures since its last success."),
        verbose_name=_("consecutive failures"),
    )
    created_at = models.DateTimeField(
        auto_now_add=True, help_text=_("Created at."), verbose_name=_("created at")
    )

    class Meta:
        verbose_name = _("notification channel")
        verbose_name_plural = _("notification channels")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        from django.core.exceptions import ValidationError

        from monitoring.channels import CHANNELS
        from monitoring.rules import RULES

        if not isinstance(self.rules, list) or not all(isinstance(r, str) for r in self.rules):
            raise ValidationError(
                {"rules": _('a list of rule keys, e.g. ["error_rate", "expiry"]')}
            )
        unknown = sorted(set(self.rules) - set(RULES))
        if unknown:
            known = ", ".join(sorted(RULES))
            raise ValidationError(
                {
                    "rules": _("unknown rule(s) %(rules)s (known: %(known)s)")
                    % {"rules": ", ".join(unknown), "known": known}
                }
            )
        if self.kind in CHANNELS and self.kind != "email" and self.connection_id is None:
            raise ValidationError(
                {"connection": _("Slack, Teams and webhook channels send through a connection.")}
            )
        if self.kind == "webhook" and not self.path:
            raise ValidationError({"path": _("The path on the connection to post to.")})


class Notification(models.Model):
    """One message to one channel about one incident (or a test, or a digest), and how its
    sending went. The incident's timeline."""

    channel = models.ForeignKey(
        Channel,
        on_delete=models.CASCADE,
        related_name="notifications",
        help_text=_("Where."),
        verbose_name=_("channel"),
    )
    incident = models.ForeignKey(
        Incident,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notifications",
        help_text=_("About what (empty for a test or a digest)."),
        verbose_name=_("incident"),
    )
    kind = models.CharField(
        max_length=20,
        choices=NotificationKind.choices,
        help_text=_("Which state change."),
        verbose_name=_("kind"),
    )
    created_at = models.DateTimeField(
        default=timezone.now, db_index=True, help_text=_("When."), verbose_name=_("created at")
    )
    status = models.CharField(
        max_length=10,
        choices=DeliveryStatus.choices,
        help_text=_("Whether it was sent."),
        verbose_name=_("status"),
    )
    subject = models.CharField(
        max_length=300, help_text=_("The message's title."), verbose_name=_("subject")
    )
    error = models.CharField(
        max_length=500,
        blank=True,
        help_text=_("Why it failed (no secret)."),
        verbose_name=_("error"),
    )
    correlation_id = models.CharField(
        max_length=100,
        blank=True,
        help_text=_("Of the outbound call (its API call rows)."),
        verbose_name=_("correlation ID"),
    )

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} → {self.channel_id}: {self.status}"


class RuleSetting(models.Model):
    """A rule's parameters changed for the whole hub (no connection) or for one connection or
    endpoint, or the rule switched off there. Unknown parameter names are refused."""

    rule = models.CharField(
        max_length=60, help_text=_("The rule's key (docs/monitoring.md)."), verbose_name=_("rule")
    )
    connection = models.ForeignKey(
        "connectors.Connection",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text=_("Only for this connection; empty: the hub's default."),
        verbose_name=_("connection"),
    )
    endpoint = models.ForeignKey(
        "webhooks.WebhookEndpoint",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text=_("Only for this endpoint; empty: the hub's default."),
        verbose_name=_("endpoint"),
    )
    enabled = models.BooleanField(
        default=True, help_text=_("Off: the rule never fires here."), verbose_name=_("enabled")
    )
    params = models.JSONField(
        default=dict,
        blank=True,
        help_text=_(
            'Parameters to change, e.g. {"percent": 30, "min_count": 20}; others keep '
            "their defaults."
        ),
        verbose_name=_("params"),
    )

    class Meta:
        verbose_name = _("rule setting")
        verbose_name_plural = _("rule settings")
        ordering = ["rule", "id"]

    def __str__(self) -> str:
        return self.rule

    def clean(self):
        from django.core.exceptions import ValidationError

        from connectors.registry import UnknownKey
        from monitoring.rules import RULES

        try:
            rule = RULES.lookup(self.rule)
        except UnknownKey as exc:
            raise ValidationError({"rule": str(exc)}) from None
        if not isinstance(self.params, dict):
            raise ValidationError({"params": _("an object of parameter names and values")})
        unknown = sorted(set(self.params) - set(rule.defaults))
        if unknown:
            known = ", ".join(sorted(rule.defaults)) or "none"
            raise ValidationError(
                {
                    "params": _("unknown parameter(s) %(params)s (known: %(known)s)")
                    % {"params": ", ".join(unknown), "known": known}
                }
            )
