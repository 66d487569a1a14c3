"""Choices of the webhooks app."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class EventStatus(models.TextChoices):
    RECEIVED = "received", _("Received")
    PROCESSING = "processing", _("Processing")
    PROCESSED = "processed", _("Processed")
    UNHANDLED = "unhandled", _("No handler (nothing is set up for its type)")
    RETRYING = "retrying", _("Retrying")
    FAILED = "failed", _("Failed (waiting for a person)")
    DEAD = "dead", _("Dead (attempts exhausted)")
    REJECTED = "rejected", _("Rejected (not valid JSON)")
    RESOLVED = "resolved", _("Resolved by an operator")


class Redaction(models.TextChoices):
    RETENTION = "retention", _("Body dropped (payload retention)")
    ERASURE = "erasure", _("Personal data erased (GDPR desk)")


class AttemptOutcome(models.TextChoices):
    PROCESSED = "processed", _("Processed")
    UNHANDLED = "unhandled", _("Nothing took it (no handler, no flow)")
    RETRY = "retry", _("Transient failure, retry scheduled")
    WAITING = "waiting", _("Waited for a slot of a busy connection (not counted as a failure)")
    FAILED = "failed", _("Permanent failure")
    DEAD = "dead", _("Transient failure, attempts exhausted")
    LOST = "lost", _("Worker lost (lease expired)")
