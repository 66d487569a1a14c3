"""The sandbox CRM's data: its settings and faults, contacts, idempotency keys, requests."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class SandboxState(models.Model):
    """One row: the sandbox CRM's API key and the faults switched on."""

    api_key = models.CharField(
        max_length=200,
        blank=True,
        help_text=_("The key clients send in X-API-Key. Empty: all 401."),
    )
    fail_next = models.PositiveIntegerField(
        default=0, help_text=_("The next N requests answer 503 (counts down).")
    )
    error_rate = models.FloatField(
        default=0.0, help_text=_("Share of requests (0 to 1) answered 503 at random.")
    )
    latency_ms = models.PositiveIntegerField(default=0, help_text=_("Added to every answer."))
    rate_limit = models.PositiveIntegerField(
        default=0, help_text=_("Requests allowed per window; more get 429. 0: no limit.")
    )
    rate_window_seconds = models.PositiveIntegerField(default=1, help_text=_("The window."))
    retry_after_seconds = models.PositiveIntegerField(
        default=1, help_text=_("Retry-After sent with 429 and 503.")
    )
    window_started_at = models.FloatField(default=0.0, editable=False)
    window_count = models.PositiveIntegerField(default=0, editable=False)
    log_requests = models.BooleanField(
        default=True, help_text=_("Keep each request (method, path, body) for inspection.")
    )

    class Meta:
        verbose_name = _("sandbox settings and faults")
        verbose_name_plural = _("sandbox settings and faults")

    def __str__(self) -> str:
        return "Sandbox CRM"

    @classmethod
    def get(cls) -> SandboxState:
        state, _created = cls.objects.get_or_create(pk=1)
        return state


class SandboxContact(models.Model):
    """A contact of the sandbox CRM. Duplicates by email are allowed, as in many real CRMs:
    avoiding them is the hub's job."""

    email = models.CharField(max_length=300, blank=True, db_index=True, help_text=_("Email."))
    data = models.JSONField(default=dict, help_text=_("Every field the client sent."))
    created_at = models.DateTimeField(auto_now_add=True, help_text=_("Created at."))
    updated_at = models.DateTimeField(auto_now=True, db_index=True, help_text=_("Updated at."))

    class Meta:
        verbose_name = _("sandbox contact")
        verbose_name_plural = _("sandbox contacts")
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"c_{self.pk}"

    def as_json(self) -> dict:
        return {
            **self.data,
            "id": f"c_{self.pk}",
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


class SandboxIdempotencyKey(models.Model):
    key = models.CharField(max_length=300, unique=True, help_text=_("The client's key."))
    fingerprint = models.CharField(max_length=64, help_text=_("SHA-256 of the request."))
    status = models.PositiveSmallIntegerField(default=0, help_text=_("0 while running."))
    body = models.JSONField(null=True, help_text=_("The answer replayed."))

    class Meta:
        verbose_name = _("sandbox idempotency key")
        verbose_name_plural = _("sandbox idempotency keys")

    def __str__(self) -> str:
        return self.key


class SandboxRequest(models.Model):
    """A request the sandbox CRM received, to check what a client really sent."""

    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    idempotency_key = models.CharField(max_length=300, blank=True)
    body = models.JSONField(null=True)
    status = models.PositiveSmallIntegerField(default=0)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("sandbox request")
        verbose_name_plural = _("sandbox requests")
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.method} {self.path} → {self.status}"
