"""A webhook endpoint: the public URL where one connection's service posts its events."""

from __future__ import annotations

import ipaddress

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

SCHEME_CHOICES = [
    ("github", "GitHub (X-Hub-Signature-256)"),
    ("stripe", "Stripe (Stripe-Signature)"),
    ("standard_webhooks", "Standard Webhooks / Svix (webhook-signature)"),
    ("shopify", "Shopify (X-Shopify-Hmac-Sha256)"),
    ("slack", "Slack (X-Slack-Signature v0)"),
    ("hmac", "Generic HMAC (configured below)"),
]
MAX_BODY_LIMIT = 25 * 1024 * 1024


class WebhookEndpoint(models.Model):
    """Where a partner posts events: ``POST /webhooks/<slug>/``, verified by ``scheme`` with the
    connection's webhook signing secrets (two may be valid during a rotation)."""

    connection = models.ForeignKey(
        "connectors.Connection",
        on_delete=models.PROTECT,
        related_name="webhook_endpoints",
        help_text=_(
            "The partner account that posts here. Its credentials of kind 'webhook "
            "signing secret' verify the deliveries."
        ),
        verbose_name=_("connection"),
    )
    slug = models.SlugField(
        max_length=80,
        unique=True,
        help_text=_(
            "The URL is /webhooks/{slug}/, with this slug in place of {slug}. Give the "
            "partner this URL. Make it hard to guess if you like, but the signature is what "
            "protects it."
        ),
        verbose_name=_("slug"),
    )
    scheme = models.CharField(
        max_length=30,
        choices=SCHEME_CHOICES,
        blank=True,
        help_text=_("How deliveries are signed. Empty only together with 'unsigned'."),
        verbose_name=_("scheme"),
    )
    unsigned = models.BooleanField(
        default=False,
        help_text=_(
            "DANGER: accept deliveries without any signature. Only for partners that "
            "cannot sign, behind an IP allowlist."
        ),
        verbose_name=_("unsigned"),
    )
    scheme_options = models.JSONField(
        default=dict,
        blank=True,
        help_text=_(
            'Generic HMAC only: {"header": "X-Signature", "algorithm": "sha256"|"sha512", '
            '"encoding": "hex"|"base64", "prefix": "sha256=", "signed": "body"|"timestamp.body", '
            '"timestamp_header": "X-Timestamp"}.'
        ),
        verbose_name=_("scheme options"),
    )
    timestamp_tolerance_seconds = models.PositiveIntegerField(
        default=300,
        validators=[MinValueValidator(1), MaxValueValidator(3600)],
        help_text=_(
            "Signed timestamps further than this from now, in the past or the future, "
            "are refused (replay protection)."
        ),
        verbose_name=_("timestamp tolerance seconds"),
    )
    ip_allowlist = models.TextField(
        blank=True,
        help_text=_("Optional: one CIDR per line (e.g. 192.30.252.0/22). Empty: any address."),
        verbose_name=_("IP allowlist"),
    )
    max_body_bytes = models.PositiveIntegerField(
        default=1024 * 1024,
        validators=[MinValueValidator(1024), MaxValueValidator(MAX_BODY_LIMIT)],
        help_text=_("Larger deliveries are refused with 413 (at most 25 MiB)."),
        verbose_name=_("max body bytes"),
    )
    event_id_source = models.CharField(
        max_length=200,
        blank=True,
        help_text=_(
            "Where the partner's event id is: a header ('header:X-Event-Id') or a path "
            "in the JSON body ('json:data.id'). Empty: the scheme's default; 'body-hash' only for "
            "partners that send no id."
        ),
        verbose_name=_("event ID source"),
    )
    event_type_source = models.CharField(
        max_length=200,
        blank=True,
        help_text=_(
            "Where the event type is: a header ('header:X-Event-Type') or a path in the "
            "JSON body ('json:type'). Empty: the scheme's default."
        ),
        verbose_name=_("event type source"),
    )
    accepted_content_types = models.CharField(
        max_length=300,
        default="application/json",
        help_text=_("Comma-separated media types accepted (parameters like charset are ignored)."),
        verbose_name=_("accepted content types"),
    )
    enabled = models.BooleanField(
        default=True,
        help_text=_("Disabled endpoints answer 404, like unknown ones."),
        verbose_name=_("enabled"),
    )
    rejected_count = models.PositiveIntegerField(
        default=0,
        editable=False,
        help_text=_("Deliveries refused (signature, timestamp, IP, size)."),
        verbose_name=_("rejected count"),
    )
    last_rejection_reason = models.CharField(
        max_length=200,
        blank=True,
        editable=False,
        help_text=_("Why the last one was refused."),
        verbose_name=_("last rejection reason"),
    )
    last_rejection_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text=_("When the last one was refused."),
        verbose_name=_("last rejection at"),
    )
    bodies_dropped_before = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text=_(
            "Payload retention: the processed events received before this have lost "
            "their body (each pass goes on from here, so it never reads them again)."
        ),
        verbose_name=_("bodies dropped before"),
    )
    created_at = models.DateTimeField(
        auto_now_add=True, help_text=_("Created at."), verbose_name=_("created at")
    )
    updated_at = models.DateTimeField(
        auto_now=True, help_text=_("Last changed at."), verbose_name=_("updated at")
    )

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["slug"]

    def __str__(self) -> str:
        return f"/webhooks/{self.slug}/"

    def clean(self):
        super().clean()
        if not self.scheme and not self.unsigned:
            raise ValidationError(
                {"scheme": _("Choose a verification scheme, or tick 'unsigned' explicitly.")}
            )
        if self.scheme and self.unsigned:
            raise ValidationError({"unsigned": _("An endpoint with a scheme is not unsigned.")})
        try:
            self.allowed_networks()
        except ValueError as exc:
            raise ValidationError({"ip_allowlist": str(exc)}) from None
        if self.scheme == "hmac":
            from webhooks.schemes.generic_hmac import check_options

            try:
                check_options(self.scheme_options)
            except ValueError as exc:
                raise ValidationError({"scheme_options": str(exc)}) from None

    def allowed_networks(self) -> list:
        networks = []
        for line in self.ip_allowlist.replace(",", "\n").splitlines():
            line = line.strip()
            if not line:
                continue
            try:
                networks.append(ipaddress.ip_network(line, strict=False))
            except ValueError:
                raise ValueError(f"{line!r} is not an IP address or CIDR range.") from None
        return networks

    def content_types(self) -> set[str]:
        return {t.strip().lower() for t in self.accepted_content_types.split(",") if t.strip()}


# What a person configures on an endpoint, grouped as the console shows it; the console's form
# and integrations as code both read this list. The signing secrets are the connection's
# credentials; the refusal counters are state.
ENDPOINT_SETTINGS: list[tuple[str | None, list[str]]] = [
    (None, ["connection", "slug", "enabled"]),
    (
        "Verification",
        ["scheme", "unsigned", "scheme_options", "timestamp_tolerance_seconds", "ip_allowlist"],
    ),
    (
        "Delivery",
        ["max_body_bytes", "accepted_content_types", "event_id_source", "event_type_source"],
    ),
]


class RefusalKind(models.TextChoices):
    """Why deliveries were refused, as a few fixed classes (the words are on the endpoint)."""

    SIGNATURE = "signature", _("Signature or timestamp")
    ADDRESS = "address", _("Sender address not allowed")
    SIZE = "size", _("Body too large")
    MALFORMED = "malformed", _("Malformed request")
    NOT_READY = "not_ready", _("Endpoint not ready (its secret)")
    OTHER = "other", _("Other")


class EndpointRefusals(models.Model):
    """Refused deliveries of an endpoint by kind, a running total: what ``/metrics`` exposes
    as ``hub_webhook_refusals_total{endpoint, reason}``. Written with the endpoint's counter."""

    endpoint = models.ForeignKey(
        WebhookEndpoint,
        on_delete=models.CASCADE,
        related_name="refusals",
        help_text=_("Where."),
        verbose_name=_("endpoint"),
    )
    kind = models.CharField(
        max_length=20, choices=RefusalKind.choices, help_text=_("Why."), verbose_name=_("kind")
    )
    count = models.PositiveBigIntegerField(
        default=0, help_text=_("Refusals of this kind."), verbose_name=_("count")
    )

    class Meta:
        verbose_name = _("endpoint refusals")
        verbose_name_plural = _("endpoint refusals")
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "kind"], name="endpoint_refusals_unique")
        ]

    def __str__(self) -> str:
        return f"{self.endpoint_id} {self.kind}: {self.count}"


class RefusedDelivery(models.Model):
    """One of an endpoint's last refused deliveries, for a person to see what is refused and
    why: when, the kind and reason, and the sender's address; never a body, a header or a
    signature. Written with the endpoint's counter, at most ``RECENT_REFUSALS`` kept per
    endpoint (older ones are deleted as new ones come)."""

    endpoint = models.ForeignKey(
        WebhookEndpoint,
        on_delete=models.CASCADE,
        related_name="refused",
        help_text=_("Where."),
        verbose_name=_("endpoint"),
    )
    at = models.DateTimeField(help_text=_("When it was refused."), verbose_name=_("at"))
    kind = models.CharField(
        max_length=20,
        choices=RefusalKind.choices,
        help_text=_("Why (class)."),
        verbose_name=_("kind"),
    )
    reason = models.CharField(
        max_length=200, help_text=_("Why, as the sender was told."), verbose_name=_("reason")
    )
    source_ip = models.GenericIPAddressField(
        null=True, blank=True, help_text=_("Sender address."), verbose_name=_("source IP")
    )

    class Meta:
        verbose_name = _("refused delivery")
        verbose_name_plural = _("refused deliveries")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["endpoint", "-at"], name="refused_endpoint_at")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.reason}"


RECENT_REFUSALS = 20  # kept per endpoint
