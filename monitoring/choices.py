"""Choices of the monitoring app, in one place."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class IncidentState(models.TextChoices):
    OPEN = "open", _("Open")
    ACKNOWLEDGED = "acknowledged", _("Acknowledged")
    RESOLVED = "resolved", _("Resolved")
    IGNORED = "ignored", _("Ignored")


ACTIVE_STATES = (IncidentState.OPEN, IncidentState.ACKNOWLEDGED)


class Severity(models.TextChoices):
    WARNING = "warning", _("Warning")
    CRITICAL = "critical", _("Critical")


class TargetType(models.TextChoices):
    CONNECTION = "connection", _("Connection")
    ENDPOINT = "endpoint", _("Webhook endpoint")
    SYNC_JOB = "sync_job", _("Sync job")
    FLOW = "flow", _("Flow")
    CHANNEL = "channel", _("Notification channel")
    HUB = "hub", _("The hub itself")


class ChannelKind(models.TextChoices):
    EMAIL = "email", _("Email")
    SLACK = "slack", _("Slack (incoming webhook)")
    TEAMS = "teams", _("Microsoft Teams (incoming webhook)")
    WEBHOOK = "webhook", _("Signed webhook (Standard Webhooks)")


class NotificationKind(models.TextChoices):
    OPENED = "opened", _("Opened")
    ESCALATED = "escalated", _("Escalated")
    REOPENED = "reopened", _("Re-opened")
    RESOLVED = "resolved", _("Resolved")
    TEST = "test", _("Test")
    DIGEST = "digest", _("Daily digest")


class DeliveryStatus(models.TextChoices):
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")


class Health(models.TextChoices):
    HEALTHY = "healthy", _("Healthy")
    DEGRADED = "degraded", _("Degraded")
    FAILING = "failing", _("Failing")
    PAUSED = "paused", _("Paused")
    REAUTH_REQUIRED = "reauth_required", _("Reauthorisation required")
    DISABLED = "disabled", _("Disabled")
