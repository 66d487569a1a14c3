"""The sandbox partners' data: each service's settings and faults, the CRM's contacts, the
other services' records, idempotency keys, requests."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

SERVICE_CHOICES = [
    ("crm", "CRM"),
    ("payments", _("Payments")),
    ("emailing", _("Emailing")),
    ("booking", _("Booking")),
    ("invoicing", _("Invoicing")),
    ("support", _("Support")),
    ("chat", _("Chat")),
]


class SandboxState(models.Model):
    """One row per sandbox service: its API key, the faults switched on, where its webhooks
    go."""

    service = models.CharField(
        max_length=20,
        unique=True,
        default="crm",
        choices=SERVICE_CHOICES,
        help_text=_("The sandbox service these settings are for."),
        verbose_name=_("service"),
    )
    api_key = models.CharField(
        max_length=200,
        blank=True,
        help_text=_("The key clients send in X-API-Key. Empty: all 401."),
        verbose_name=_("API key"),
    )
    fail_next = models.PositiveIntegerField(
        default=0,
        help_text=_("The next N requests answer 503 (counts down)."),
        verbose_name=_("fail next"),
    )
    error_rate = models.FloatField(
        default=0.0,
        help_text=_("Share of requests (0 to 1) answered 503 at random."),
        verbose_name=_("error rate"),
    )
    latency_ms = models.PositiveIntegerField(
        default=0, help_text=_("Added to every answer."), verbose_name=_("latency ms")
    )
    rate_limit = models.PositiveIntegerField(
        default=0,
        help_text=_("Requests allowed per window; more get 429. 0: no limit."),
        verbose_name=_("rate limit"),
    )
    rate_window_seconds = models.PositiveIntegerField(
        default=1, help_text=_("The window."), verbose_name=_("rate window seconds")
    )
    retry_after_seconds = models.PositiveIntegerField(
        default=1,
        help_text=_("Retry-After sent with 429 and 503."),
        verbose_name=_("retry after seconds"),
    )
    window_started_at = models.FloatField(
        default=0.0, editable=False, verbose_name=_("window started at")
    )
    window_count = models.PositiveIntegerField(
        default=0, editable=False, verbose_name=_("window count")
    )
    log_requests = models.BooleanField(
        default=True,
        help_text=_("Keep each request (method, path, body) for inspection."),
        verbose_name=_("log requests"),
    )
    webhook_url = models.URLField(
        blank=True,
        help_text=_(
            "Where the service posts its webhooks (booking created or cancelled, contact "
            "confirmed): a hub endpoint's URL. Empty: it posts none."
        ),
        verbose_name=_("webhook URL"),
    )
    webhook_secret = models.CharField(
        max_length=200,
        blank=True,
        help_text=_("The whsec_ secret its webhooks are signed with (Standard Webhooks)."),
        verbose_name=_("webhook secret"),
    )

    class Meta:
        verbose_name = _("sandbox settings and faults")
        verbose_name_plural = _("sandbox settings and faults")

    def __str__(self) -> str:
        return f"Sandbox {self.get_service_display()}"

    @classmethod
    def get(cls, service: str = "crm") -> SandboxState:
        state, _created = cls.objects.get_or_create(service=service)
        return state


class SandboxContact(models.Model):
    """A contact of the sandbox CRM. Duplicates by email are allowed, as in many real CRMs:
    avoiding them is the hub's job."""

    email = models.CharField(
        max_length=300, blank=True, db_index=True, help_text=_("Email."), verbose_name=_("email")
    )
    data = models.JSONField(
        default=dict, help_text=_("Every field the client sent."), verbose_name=_("data")
    )
    created_at = models.DateTimeField(
        auto_now_add=True, help_text=_("Created at."), verbose_name=_("created at")
    )
    updated_at = models.DateTimeField(
        auto_now=True, db_index=True, help_text=_("Updated at."), verbose_name=_("updated at")
    )

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
    key = models.CharField(
        max_length=300, unique=True, help_text=_("The client's key."), verbose_name=_("key")
    )
    fingerprint = models.CharField(
        max_length=64, help_text=_("SHA-256 of the request."), verbose_name=_("fingerprint")
    )
    status = models.PositiveSmallIntegerField(
        default=0, help_text=_("0 while running."), verbose_name=_("status")
    )
    body = models.JSONField(null=True, help_text=_("The answer replayed."), verbose_name=_("body"))

    class Meta:
        verbose_name = _("sandbox idempotency key")
        verbose_name_plural = _("sandbox idempotency keys")

    def __str__(self) -> str:
        return self.key


class SandboxRecord(models.Model):
    """A record of a sandbox service other than the CRM (a booking, an email sent, an
    invoice…): what the client sent, with the status the tool adds."""

    service = models.CharField(
        max_length=20, choices=SERVICE_CHOICES, help_text=_("Service."), verbose_name=_("service")
    )
    collection = models.CharField(
        max_length=40,
        help_text=_("Its collection (bookings, invoices…)."),
        verbose_name=_("collection"),
    )
    ref = models.CharField(
        max_length=80, help_text=_("Its id at the tool (bk_…)."), verbose_name=_("id")
    )
    data = models.JSONField(
        default=dict, help_text=_("Every field the client sent."), verbose_name=_("data")
    )
    created_at = models.DateTimeField(
        auto_now_add=True, help_text=_("Created at."), verbose_name=_("created at")
    )
    updated_at = models.DateTimeField(
        auto_now=True, help_text=_("Updated at."), verbose_name=_("updated at")
    )

    class Meta:
        verbose_name = _("sandbox record")
        verbose_name_plural = _("sandbox records")
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(fields=["service", "ref"], name="sandboxrecord_ref"),
        ]
        indexes = [models.Index(fields=["service", "collection", "-id"])]

    def __str__(self) -> str:
        return f"{self.service} {self.ref}"

    def as_json(self) -> dict:
        return {
            **self.data,
            "id": self.ref,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


class SandboxRequest(models.Model):
    """A request a sandbox service received, to check what a client really sent."""

    service = models.CharField(
        max_length=20, default="crm", choices=SERVICE_CHOICES, verbose_name=_("service")
    )
    method = models.CharField(max_length=10, verbose_name=_("method"))
    path = models.CharField(max_length=500, verbose_name=_("path"))
    idempotency_key = models.CharField(
        max_length=300, blank=True, verbose_name=_("idempotency key")
    )
    body = models.JSONField(null=True, verbose_name=_("body"))
    status = models.PositiveSmallIntegerField(default=0, verbose_name=_("status"))
    received_at = models.DateTimeField(auto_now_add=True, verbose_name=_("received at"))

    class Meta:
        verbose_name = _("sandbox request")
        verbose_name_plural = _("sandbox requests")
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.method} {self.path} → {self.status}"
