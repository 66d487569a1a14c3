"""Choices of the monitoring app, in one place."""

from django.db import models


class IncidentState(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"
    IGNORED = "ignored", "Ignored"


ACTIVE_STATES = (IncidentState.OPEN, IncidentState.ACKNOWLEDGED)


class Severity(models.TextChoices):
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


class TargetType(models.TextChoices):
    CONNECTION = "connection", "Connection"
    ENDPOINT = "endpoint", "Webhook endpoint"
    SYNC_JOB = "sync_job", "Sync job"
    FLOW = "flow", "Flow"
    CHANNEL = "channel", "Notification channel"
    HUB = "hub", "The hub itself"


class ChannelKind(models.TextChoices):
    EMAIL = "email", "Email"
    SLACK = "slack", "Slack (incoming webhook)"
    TEAMS = "teams", "Microsoft Teams (incoming webhook)"
    WEBHOOK = "webhook", "Signed webhook (Standard Webhooks)"


class NotificationKind(models.TextChoices):
    OPENED = "opened", "Opened"
    ESCALATED = "escalated", "Escalated"
    REOPENED = "reopened", "Re-opened"
    RESOLVED = "resolved", "Resolved"
    TEST = "test", "Test"
    DIGEST = "digest", "Daily digest"


class DeliveryStatus(models.TextChoices):
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class Health(models.TextChoices):
    HEALTHY = "healthy", "Healthy"
    DEGRADED = "degraded", "Degraded"
    FAILING = "failing", "Failing"
    PAUSED = "paused", "Paused"
    REAUTH_REQUIRED = "reauth_required", "Reauthorisation required"
    DISABLED = "disabled", "Disabled"
