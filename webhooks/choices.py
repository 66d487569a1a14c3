"""Choices of the webhooks app."""

from django.db import models


class EventStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    PROCESSING = "processing", "Processing"
    PROCESSED = "processed", "Processed"
    UNHANDLED = "unhandled", "No handler (nothing is set up for its type)"
    RETRYING = "retrying", "Retrying"
    FAILED = "failed", "Failed (waiting for a person)"
    DEAD = "dead", "Dead (attempts exhausted)"
    REJECTED = "rejected", "Rejected (not valid JSON)"
    RESOLVED = "resolved", "Resolved by an operator"


class Redaction(models.TextChoices):
    RETENTION = "retention", "Body dropped (payload retention)"
    ERASURE = "erasure", "Personal data erased (GDPR desk)"


class AttemptOutcome(models.TextChoices):
    PROCESSED = "processed", "Processed"
    UNHANDLED = "unhandled", "Nothing took it (no handler, no flow)"
    RETRY = "retry", "Transient failure, retry scheduled"
    WAITING = "waiting", "Waited for a slot of a busy connection (not counted as a failure)"
    FAILED = "failed", "Permanent failure"
    DEAD = "dead", "Transient failure, attempts exhausted"
    LOST = "lost", "Worker lost (lease expired)"
