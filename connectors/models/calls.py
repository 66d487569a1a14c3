"""What the outbound engine records: API calls, idempotency records, rate-limit buckets."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ErrorKind(models.TextChoices):
    TIMEOUT = "timeout", _("Timeout")
    CONNECTION = "connection", _("Connection error")
    HTTP_4XX = "http_4xx", _("HTTP 4xx")
    HTTP_5XX = "http_5xx", _("HTTP 5xx")
    RATE_LIMITED = "rate_limited", _("Rate limited")
    CIRCUIT_OPEN = "circuit_open", _("Circuit open")
    BUSY = "busy", _("Connection busy (its share of the workers in use)")
    BLOCKED_URL = "blocked_url", _("Blocked URL")
    AUTH = "auth", _("Authentication")
    RESPONSE_TOO_LARGE = "response_too_large", _("Response too large")


class ApiCall(models.Model):
    """One outbound HTTP attempt. Never holds Authorization, cookies, keys, tokens or bodies."""

    connection = models.ForeignKey(
        "connectors.Connection",
        on_delete=models.CASCADE,
        related_name="api_calls",
        help_text=_("The connection called."),
        verbose_name=_("connection"),
    )
    created_at = models.DateTimeField(
        default=timezone.now,
        db_index=True,
        help_text=_("When the attempt started."),
        verbose_name=_("created at"),
    )
    method = models.CharField(max_length=10, help_text=_("HTTP method."), verbose_name=_("method"))
    path = models.CharField(
        max_length=1000,
        help_text=_("Path and query, relative to the base URL, with secret query values removed."),
        verbose_name=_("path"),
    )
    status_code = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text=_("HTTP status (empty when no answer arrived)."),
        verbose_name=_("status code"),
    )
    duration_ms = models.PositiveIntegerField(
        default=0, help_text=_("Duration of the attempt."), verbose_name=_("duration ms")
    )
    attempt = models.PositiveSmallIntegerField(
        default=1, help_text=_("1 for the first attempt."), verbose_name=_("attempt")
    )
    correlation_id = models.CharField(
        max_length=100,
        db_index=True,
        help_text=_("Sent as X-Request-ID (or the connection's name)."),
        verbose_name=_("correlation ID"),
    )
    idempotency_key = models.CharField(
        max_length=255,
        blank=True,
        help_text=_("The idempotency key the call carried, if any."),
        verbose_name=_("idempotency key"),
    )
    error_kind = models.CharField(
        max_length=30,
        choices=ErrorKind.choices,
        blank=True,
        help_text=_("Empty for a success."),
        verbose_name=_("error kind"),
    )
    error_message = models.CharField(
        max_length=500,
        blank=True,
        help_text=_("What went wrong, without secrets or bodies."),
        verbose_name=_("error message"),
    )
    request_bytes = models.PositiveIntegerField(
        default=0, help_text=_("Size of the request body."), verbose_name=_("request bytes")
    )
    response_bytes = models.PositiveIntegerField(
        default=0, help_text=_("Size of the response body."), verbose_name=_("response bytes")
    )
    quota_remaining = models.IntegerField(
        null=True,
        blank=True,
        help_text=_("Requests left that the partner reported, if it did."),
        verbose_name=_("quota remaining"),
    )
    quota_reset_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("When the partner said the quota resets."),
        verbose_name=_("quota reset at"),
    )
    quota_limit = models.IntegerField(
        null=True,
        blank=True,
        help_text=_(
            "The size of the partner's quota window, if it said (X-RateLimit-Limit, "
            "RateLimit-Policy): with the requests left, the share used."
        ),
        verbose_name=_("quota limit"),
    )
    run_ref = models.CharField(
        max_length=40,
        blank=True,
        default="",
        help_text=_(
            "The run that made the call (flow_run:12, sync_run:3); empty for a call made "
            "by site code."
        ),
        verbose_name=_("run ref"),
    )
    step = models.CharField(
        max_length=100,
        blank=True,
        default="",
        help_text=_("The workflow step that made the call (its name); empty outside a step."),
        verbose_name=_("step"),
    )

    class Meta:
        verbose_name = _("API call")
        verbose_name_plural = _("API calls")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["connection", "-created_at"]),
            # the console at millions of rows: the list in its order, the error-kind and status
            # filters, exact search by idempotency key, and the partner's last reported quota
            models.Index(fields=["created_at", "id"], name="apicall_created"),
            models.Index(fields=["error_kind", "created_at", "id"], name="apicall_error_kind"),
            models.Index(fields=["status_code", "created_at", "id"], name="apicall_status"),
            models.Index(fields=["idempotency_key"], name="apicall_idempotency_key"),
            models.Index(
                fields=["connection", "created_at"],
                name="apicall_quota_reported",
                condition=models.Q(quota_remaining__isnull=False),
            ),
            # most calls of a busy hub belong to a run, but lone calls need no index entry
            models.Index(
                fields=["run_ref"], name="apicall_run_ref", condition=~models.Q(run_ref="")
            ),
        ]

    def __str__(self) -> str:
        status = self.status_code or self.get_error_kind_display()
        return f"{self.method} {self.path} → {status}"


class IdempotencyState(models.TextChoices):
    IN_FLIGHT = "in_flight", _("In flight")
    COMPLETED = "completed", _("Completed")
    FAILED = "failed", _("Failed (may be retried)")


class IdempotencyRecord(models.Model):
    """Scope + key → request fingerprint, state and stored result: an effect happens once."""

    scope = models.CharField(
        max_length=200,
        help_text=_("Namespace of the key (e.g. connection)."),
        verbose_name=_("scope"),
    )
    key = models.CharField(
        max_length=255, help_text=_("The idempotency key."), verbose_name=_("key")
    )
    fingerprint = models.CharField(
        max_length=64,
        help_text=_("SHA-256 of the request (method, path, body) the key was used for."),
        verbose_name=_("fingerprint"),
    )
    state = models.CharField(
        max_length=20,
        choices=IdempotencyState.choices,
        default=IdempotencyState.IN_FLIGHT,
        help_text=_("In flight: a call holds it. Completed: the stored result is replayed."),
        verbose_name=_("state"),
    )
    locked_until = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("An in-flight record older than this was abandoned and may be taken over."),
        verbose_name=_("locked until"),
    )
    response_status = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text=_("Stored result: HTTP status."),
        verbose_name=_("response status"),
    )
    response_headers = models.JSONField(
        default=dict,
        blank=True,
        help_text=_("Stored result: a few response headers."),
        verbose_name=_("response headers"),
    )
    response_body = models.BinaryField(
        null=True,
        blank=True,
        help_text=_("Stored result: the body, kept until the record expires."),
        verbose_name=_("response body"),
    )
    correlation_id = models.CharField(
        max_length=100,
        blank=True,
        help_text=_("Of the first call."),
        verbose_name=_("correlation ID"),
    )
    created_at = models.DateTimeField(
        default=timezone.now, help_text=_("First use of the key."), verbose_name=_("created at")
    )
    updated_at = models.DateTimeField(
        auto_now=True, help_text=_("Last change."), verbose_name=_("updated at")
    )
    expires_at = models.DateTimeField(
        db_index=True, help_text=_("Purged after this."), verbose_name=_("expires at")
    )

    class Meta:
        verbose_name = _("idempotency record")
        verbose_name_plural = _("idempotency records")
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="idempotency_scope_key_unique")
        ]

    def __str__(self) -> str:
        return f"{self.scope}:{self.key} ({self.state})"


class RateLimitBucket(models.Model):
    """Token bucket of a connection when the cache is not Redis (row-locked per call)."""

    connection = models.OneToOneField(
        "connectors.Connection",
        on_delete=models.CASCADE,
        related_name="rate_limit_bucket",
        help_text=_("The connection whose calls this bucket meters."),
        verbose_name=_("connection"),
    )
    tokens = models.FloatField(help_text=_("Tokens left at updated_at."), verbose_name=_("tokens"))
    updated_at = models.FloatField(
        help_text=_("Unix time of the last refill."), verbose_name=_("updated at")
    )

    class Meta:
        verbose_name = _("rate-limit bucket")
        verbose_name_plural = _("rate-limit buckets")

    def __str__(self) -> str:
        return f"bucket of connection #{self.connection_id}"
