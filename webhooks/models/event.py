"""Webhook events (one delivery each, stored raw before anything else) and their attempts."""

from __future__ import annotations

import json

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from webhooks.choices import AttemptOutcome, EventStatus, Redaction


class WebhookEvent(models.Model):
    """One delivery, stored before it is acknowledged; unique per (endpoint, partner's id).

    received → processing → processed | retrying → … → dead; failed waits for a person;
    rejected keeps what a partner sent that was signed but not valid JSON.
    """

    endpoint = models.ForeignKey(
        "webhooks.WebhookEndpoint",
        on_delete=models.PROTECT,
        related_name="events",
        help_text=_("Where it was delivered."),
        verbose_name=_("endpoint"),
    )
    event_id = models.CharField(
        max_length=255,
        help_text=_("The partner's event id (or the body's SHA-256 if it sends none)."),
        verbose_name=_("event ID"),
    )
    event_type = models.CharField(
        max_length=200, blank=True, help_text=_("The partner's type."), verbose_name=_("event type")
    )
    body = models.BinaryField(
        help_text=_("The raw body, byte for byte as received."), verbose_name=_("body")
    )
    headers = models.JSONField(
        default=dict, help_text=_("Request headers, secrets redacted."), verbose_name=_("headers")
    )
    received_at = models.DateTimeField(
        default=timezone.now, help_text=_("When it arrived."), verbose_name=_("received at")
    )
    status = models.CharField(
        max_length=20,
        choices=EventStatus.choices,
        default=EventStatus.RECEIVED,
        help_text=_("Where it is in its life."),
        verbose_name=_("status"),
    )
    attempts = models.PositiveSmallIntegerField(
        default=0, help_text=_("Processing attempts."), verbose_name=_("attempts")
    )
    next_attempt_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("When the next attempt is due (retrying)."),
        verbose_name=_("next attempt at"),
    )
    lease_until = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("A worker holds it until then; past it, the sweeper takes it back."),
        verbose_name=_("lease until"),
    )
    enqueued_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("When its processing task was last queued."),
        verbose_name=_("enqueued at"),
    )
    last_error = models.TextField(
        blank=True, help_text=_("What went wrong last."), verbose_name=_("last error")
    )
    verified_by = models.CharField(
        max_length=60,
        blank=True,
        help_text=_("Fingerprint of the secret that verified it."),
        verbose_name=_("verified by"),
    )
    source_ip = models.GenericIPAddressField(
        null=True, blank=True, help_text=_("Sender address."), verbose_name=_("source IP")
    )
    correlation_id = models.CharField(
        max_length=100,
        db_index=True,
        help_text=_("Carried by every call made for this event."),
        verbose_name=_("correlation ID"),
    )
    processed_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When it succeeded."), verbose_name=_("processed at")
    )
    resolution_note = models.TextField(
        blank=True,
        help_text=_("Why an operator resolved it by hand, and who."),
        verbose_name=_("resolution note"),
    )
    redaction = models.CharField(
        max_length=20,
        choices=Redaction.choices,
        blank=True,
        default="",
        help_text=_(
            "Empty: the body is as received. Otherwise it was dropped (payload retention) "
            "or one person's data in it was erased (GDPR desk); it can no longer be retried or "
            "replayed, and its metadata (ids, hashes, statuses) is kept."
        ),
        verbose_name=_("redaction"),
    )
    redacted_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("When its body was dropped or redacted."),
        verbose_name=_("redacted at"),
    )

    class Meta:
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "event_id"], name="webhook_event_unique_per_endpoint"
            )
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["status", "lease_until"]),
            # the console at millions of rows: the list in its order, each filter in that
            # order, and exact search by the partner's event id (see docs/operations.md)
            models.Index(fields=["received_at", "id"], name="event_received"),
            models.Index(fields=["status", "received_at", "id"], name="event_status_received"),
            models.Index(fields=["endpoint", "received_at", "id"], name="event_endpoint_received"),
            models.Index(fields=["event_type", "received_at", "id"], name="event_type_received"),
            models.Index(fields=["event_id"], name="event_partner_id"),
            # monitoring counts the events waiting for a person, per endpoint, every minute:
            # a small index of those alone answers it without reading the table
            models.Index(
                fields=["endpoint", "status"],
                name="event_waiting_endpoint",
                condition=models.Q(status__in=["failed", "dead"]),
            ),
        ]
        permissions = [
            ("retry_webhookevent", "Can retry, resolve and replay webhook events"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type or 'event'} {self.event_id}"

    def payload(self):
        """The parsed body (``None`` for a rejected, unparseable one)."""
        try:
            return json.loads(bytes(self.body))
        except ValueError:
            return None


class EventAttempt(models.Model):
    """One processing attempt of an event: when, how long, and how it ended."""

    event = models.ForeignKey(
        WebhookEvent,
        on_delete=models.CASCADE,
        related_name="attempt_log",
        help_text=_("The event."),
        verbose_name=_("event"),
    )
    number = models.PositiveSmallIntegerField(
        help_text=_("1 for the first attempt."), verbose_name=_("number")
    )
    started_at = models.DateTimeField(
        default=timezone.now, help_text=_("Start."), verbose_name=_("started at")
    )
    duration_ms = models.PositiveIntegerField(
        default=0, help_text=_("Duration."), verbose_name=_("duration ms")
    )
    outcome = models.CharField(
        max_length=20,
        choices=AttemptOutcome.choices,
        help_text=_("How it ended."),
        verbose_name=_("outcome"),
    )
    error = models.TextField(
        blank=True, help_text=_("Error summary, if any."), verbose_name=_("error")
    )

    class Meta:
        verbose_name = _("processing attempt")
        verbose_name_plural = _("processing attempts")
        ordering = ["event", "number", "id"]
        # monitoring's rollups count the attempts of the last minutes
        indexes = [models.Index(fields=["started_at"], name="eventattempt_started")]

    def __str__(self) -> str:
        return f"attempt {self.number}: {self.outcome}"
