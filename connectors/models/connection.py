"""A connection: one account at one partner service, in one environment."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from connectors.choices import AuthMethod, ConnectionStatus, Environment, ServiceKind


class Connection(models.Model):
    """One account at one partner service (CRM, emailing, payment…), in one environment.

    Holds everything the outbound engine needs to call the partner except the secrets, which are
    :class:`~connectors.models.Credential` rows. The slug is how site code and flows name it.
    """

    name = models.CharField(
        max_length=120,
        help_text=_("Human name, e.g. 'HubSpot CRM (prod)'."),
        verbose_name=_("name"),
    )
    slug = models.SlugField(
        max_length=60,
        unique=True,
        help_text=_("Stable identifier used by site code and flows: hub.call('this-slug', …)."),
        verbose_name=_("slug"),
    )
    service_kind = models.CharField(
        max_length=20,
        choices=ServiceKind.choices,
        default=ServiceKind.OTHER,
        help_text=_("What the partner is for; used for grouping and reporting."),
        verbose_name=_("service kind"),
    )
    environment = models.CharField(
        max_length=20,
        choices=Environment.choices,
        default=Environment.SANDBOX,
        help_text=_("Sandbox or production account. Production connections must use https."),
        verbose_name=_("environment"),
    )
    base_url = models.URLField(
        max_length=500,
        blank=True,
        help_text=_(
            "Root of the partner's API, e.g. https://api.example.com/v3. Paths are joined "
            "to it. Empty for a connection that only receives webhooks (it makes no calls)."
        ),
        verbose_name=_("base URL"),
    )
    auth_method = models.CharField(
        max_length=30,
        choices=AuthMethod.choices,
        default=AuthMethod.API_KEY_HEADER,
        help_text=_(
            "How requests authenticate. The secret itself is a credential of this connection."
        ),
        verbose_name=_("auth method"),
    )
    api_key_header_name = models.CharField(
        max_length=80,
        default="X-API-Key",
        help_text=_("Auth 'API key in a header': the header that carries the key."),
        verbose_name=_("API key header name"),
    )
    api_key_query_param = models.CharField(
        max_length=80,
        default="api_key",
        help_text=_(
            "Auth 'API key in the query string': the parameter name. Weaker (URLs end up "
            "in partner logs); the value is never written to the hub's logs."
        ),
        verbose_name=_("API key query param"),
    )
    basic_username = models.CharField(
        max_length=200,
        blank=True,
        help_text=_("Auth 'HTTP basic': the user name (the password is a credential)."),
        verbose_name=_("basic username"),
    )
    idempotency_header_name = models.CharField(
        max_length=80,
        default="Idempotency-Key",
        help_text=_(
            "Header carrying the idempotency key on calls that have one. Empty: the partner "
            "has no such header (the local idempotency record still guards against repeats)."
        ),
        blank=True,
        verbose_name=_("idempotency header name"),
    )
    correlation_header_name = models.CharField(
        max_length=80,
        default="X-Request-ID",
        help_text=_(
            "Header carrying the correlation id, so the partner's logs can be matched to ours."
        ),
        verbose_name=_("correlation header name"),
    )
    health_path = models.CharField(
        max_length=300,
        blank=True,
        help_text=_(
            "Path that 'Test connection' calls with GET, e.g. /me or /ping. Pick a cheap, "
            "read-only endpoint that needs authentication."
        ),
        verbose_name=_("health path"),
    )
    oauth_app = models.ForeignKey(
        "connectors.OAuthApp",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="connections",
        help_text=_("Auth 'OAuth 2.0': the partner app whose tokens this connection holds."),
        verbose_name=_("OAuth app"),
    )
    oauth_account = models.CharField(
        max_length=200,
        blank=True,
        help_text=_("Which account at the partner was connected (from the token or userinfo)."),
        verbose_name=_("OAuth account"),
    )
    token_refresh_margin_seconds = models.PositiveIntegerField(
        default=60,
        help_text=_("OAuth: an access token expiring within this many seconds is refreshed first."),
        verbose_name=_("token refresh margin seconds"),
    )
    api_version = models.CharField(
        max_length=40,
        blank=True,
        help_text=_(
            "Partner API version pinned by this connection (e.g. '2024-06-20'), so an "
            "upgrade is a decision, not a surprise."
        ),
        verbose_name=_("API version"),
    )
    requested_scopes = models.JSONField(
        default=list,
        blank=True,
        help_text=_("Scopes asked for. Ask for the fewest that the flows need."),
        verbose_name=_("requested scopes"),
    )
    granted_scopes = models.JSONField(
        default=list,
        blank=True,
        help_text=_("Scopes the partner actually granted (filled by OAuth)."),
        verbose_name=_("granted scopes"),
    )
    connect_timeout = models.FloatField(
        default=3.05,
        validators=[MinValueValidator(0.1), MaxValueValidator(60)],
        help_text=_("Seconds to wait for the TCP/TLS connection to the partner."),
        verbose_name=_("connect timeout"),
    )
    read_timeout = models.FloatField(
        default=10.0,
        validators=[MinValueValidator(0.1), MaxValueValidator(300)],
        help_text=_("Seconds to wait for each read of the partner's answer."),
        verbose_name=_("read timeout"),
    )
    retry_max_attempts = models.PositiveSmallIntegerField(
        default=4,
        validators=[MinValueValidator(1), MaxValueValidator(10)],
        help_text=_("Attempts per call, the first included; only transient failures are retried."),
        verbose_name=_("retry max attempts"),
    )
    retry_backoff_base = models.FloatField(
        default=0.5,
        validators=[MinValueValidator(0.01), MaxValueValidator(60)],
        help_text=_("Seconds: the n-th retry waits a random time up to min(cap, base * 2^n)."),
        verbose_name=_("retry backoff base"),
    )
    retry_backoff_cap = models.FloatField(
        default=20.0,
        validators=[MinValueValidator(0.1), MaxValueValidator(600)],
        help_text=_("Seconds: the longest single wait between two attempts."),
        verbose_name=_("retry backoff cap"),
    )
    retry_max_elapsed = models.FloatField(
        default=60.0,
        validators=[MinValueValidator(1), MaxValueValidator(3600)],
        help_text=_("Seconds: the whole call, retries included, never takes longer than this."),
        verbose_name=_("retry max elapsed"),
    )
    rate_limit_requests = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text=_(
            "At most this many requests per window, shared by every process. Empty: no limit."
        ),
        verbose_name=_("rate limit requests"),
    )
    rate_limit_window_seconds = models.PositiveIntegerField(
        default=60,
        validators=[MinValueValidator(1)],
        help_text=_("Length of the rate-limit window, in seconds."),
        verbose_name=_("rate limit window seconds"),
    )
    circuit_failure_threshold = models.PositiveSmallIntegerField(
        default=5,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text=_(
            "Circuit breaker: after this many consecutive transient failures, calls stop "
            "for the cooldown instead of piling up on a partner that is down."
        ),
        verbose_name=_("circuit failure threshold"),
    )
    circuit_cooldown_seconds = models.PositiveIntegerField(
        default=30,
        validators=[MinValueValidator(1), MaxValueValidator(3600)],
        help_text=_(
            "Circuit breaker: seconds the circuit stays open before one probe call decides."
        ),
        verbose_name=_("circuit cooldown seconds"),
    )
    max_concurrent_calls = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MaxValueValidator(1000)],
        help_text=_(
            "Calls to this partner in flight at once from the workers, across every "
            "process and machine: a slow or hanging partner holds no more workers than this, and "
            "its other work waits (retried shortly) while other connections flow. Empty: "
            "HUB_CONNECTION_CONCURRENCY (half the workers of a cluster); 0: no limit. Calls made "
            "by the site's own code are not limited."
        ),
        verbose_name=_("max concurrent calls"),
    )
    deprecation_seen_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text=_("When the partner first answered with a Deprecation header (RFC 9745)."),
        verbose_name=_("deprecation seen at"),
    )
    deprecation_date = models.CharField(
        max_length=100,
        blank=True,
        editable=False,
        help_text=_("The Deprecation header's value: when the API was (or will be) deprecated."),
        verbose_name=_("deprecation date"),
    )
    sunset_date = models.CharField(
        max_length=100,
        blank=True,
        editable=False,
        help_text=_("The Sunset header's value (RFC 8594): when the API stops answering."),
        verbose_name=_("sunset date"),
    )
    deprecation_link = models.URLField(
        max_length=500,
        blank=True,
        editable=False,
        help_text=_("The Link (rel=deprecation or rel=sunset) the partner gave: migration notes."),
        verbose_name=_("deprecation link"),
    )
    purpose = models.TextField(
        blank=True,
        help_text=_("GDPR: why personal data goes to this service (the processing's purpose)."),
        verbose_name=_("purpose"),
    )
    retention_days = models.PositiveIntegerField(
        default=30,
        validators=[MinValueValidator(1)],
        help_text=_("GDPR: days to keep call logs and events of this connection."),
        verbose_name=_("retention days"),
    )
    payload_retention_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_(
            "GDPR: days after which its processed events lose their body and headers and "
            "keep their metadata (ids, hashes, statuses, attempts) until the retention above. "
            "Empty: bodies are kept as long as the events."
        ),
        verbose_name=_("payload retention days"),
    )
    owner = models.CharField(
        max_length=200,
        blank=True,
        help_text=_("Who to contact about this connection (a person or a team, with an address)."),
        verbose_name=_("owner"),
    )
    status = models.CharField(
        max_length=20,
        choices=ConnectionStatus.choices,
        default=ConnectionStatus.ACTIVE,
        help_text=_(
            "Paused and disabled connections are not called; reauth required: an admin "
            "must reconnect the account first. Failing is informational: calls still go out."
        ),
        verbose_name=_("status"),
    )
    status_reason = models.CharField(
        max_length=500,
        blank=True,
        help_text=_("Why the status is what it is, in words an operator can act on."),
        verbose_name=_("status reason"),
    )
    status_changed_at = models.DateTimeField(
        default=timezone.now,
        help_text=_("When the status last changed."),
        verbose_name=_("status changed at"),
    )
    notes = models.TextField(
        blank=True, help_text=_("Free notes for the team. Never a secret."), verbose_name=_("notes")
    )
    created_at = models.DateTimeField(
        auto_now_add=True, help_text=_("When this was created."), verbose_name=_("created at")
    )
    updated_at = models.DateTimeField(
        auto_now=True, help_text=_("When this was last changed."), verbose_name=_("updated at")
    )

    class Meta:
        verbose_name = _("connection")
        verbose_name_plural = _("connections")
        ordering = ["name"]
        indexes = [models.Index(fields=["status"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_environment_display()})"

    def clean(self):
        super().clean()
        from connectors.engine.ssrf import check_base_url

        if self.base_url:
            try:
                check_base_url(self.base_url, production=self.environment == Environment.PRODUCTION)
            except ValueError as exc:
                raise ValidationError({"base_url": str(exc)}) from None
        for field in ("requested_scopes", "granted_scopes"):
            value = getattr(self, field)
            if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
                raise ValidationError(
                    {field: _('Give a JSON list of strings, e.g. ["contacts.read"].')}
                )

    def set_status(self, status: str, reason: str = "") -> None:
        """Change the status with its reason, and save just those fields."""
        self.status = status
        self.status_reason = reason[:500]
        self.status_changed_at = timezone.now()
        self.save(update_fields=["status", "status_reason", "status_changed_at", "updated_at"])


# What a person configures on a connection, grouped as the console shows it. The console's form
# and integrations as code both read this list (one place): a new setting goes here.
CONNECTION_SETTINGS: list[tuple[str | None, list[str]]] = [
    (None, ["name", "slug", "service_kind", "environment", "owner"]),
    (
        "API",
        [
            "base_url",
            "auth_method",
            "api_key_header_name",
            "api_key_query_param",
            "basic_username",
            "api_version",
            "requested_scopes",
            "health_path",
            "oauth_app",
            "token_refresh_margin_seconds",
        ],
    ),
    (
        "Reliability",
        [
            "connect_timeout",
            "read_timeout",
            "retry_max_attempts",
            "retry_backoff_base",
            "retry_backoff_cap",
            "retry_max_elapsed",
            "rate_limit_requests",
            "rate_limit_window_seconds",
            "circuit_failure_threshold",
            "circuit_cooldown_seconds",
            "max_concurrent_calls",
            "idempotency_header_name",
            "correlation_header_name",
        ],
    ),
    ("GDPR", ["purpose", "retention_days", "payload_retention_days"]),
    ("Notes", ["notes"]),
]
# What the hub itself records on a connection (not configured, not in the file): the status an
# operator or the engine sets, and what the partner granted when the account was connected.
CONNECTION_STATE = [
    "status",
    "status_reason",
    "status_changed_at",
    "granted_scopes",
    "oauth_account",
]
