"""API tokens: shown once at creation, stored as a SHA-256 digest, each with its scopes."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

SCOPES = {
    "flows:read": "List flows and read flow runs.",
    "flows:run": "Run a flow by hand (manual trigger).",
}

TOKEN_PREFIX = "hub_"  # noqa: S105 - the visible prefix of every token, not a secret


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ApiToken(models.Model):
    """A token for the hub's REST API. The token itself is shown once, when it is created;
    the hub keeps only its digest and its first characters (to recognise it in lists)."""

    name = models.CharField(
        max_length=120, help_text=_("Who or what uses it, e.g. 'website'."), verbose_name=_("name")
    )
    prefix = models.CharField(
        max_length=20,
        unique=True,
        editable=False,
        help_text=_("First characters, to recognise it."),
        verbose_name=_("prefix"),
    )
    key_digest = models.CharField(
        max_length=64,
        unique=True,
        editable=False,
        help_text=_("SHA-256 of the token."),
        verbose_name=_("key digest"),
    )
    scopes = models.JSONField(
        default=list,
        help_text="What the token may do: " + ", ".join(f"{k} ({v})" for k, v in SCOPES.items()),
        verbose_name=_("scopes"),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        help_text=_("Who created it."),
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(
        auto_now_add=True, help_text=_("Created at."), verbose_name=_("created at")
    )
    expires_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("After this, the token is refused. Empty: no expiry."),
        verbose_name=_("expires at"),
    )
    revoked_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("When it was revoked (refused from then on)."),
        verbose_name=_("revoked at"),
    )
    last_used_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text=_("Last successful use."),
        verbose_name=_("last used at"),
    )

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def issue(cls, name: str, scopes: list[str], *, created_by=None, expires_at=None):
        """Create a token; returns (row, the token). The token is not stored anywhere."""
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown:
            raise ValueError(f"unknown scope {unknown[0]!r} (known: {', '.join(SCOPES)})")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = cls.objects.create(
            name=name,
            prefix=token[:12],
            key_digest=digest(token),
            scopes=sorted(set(scopes)),
            created_by=created_by,
            expires_at=expires_at,
        )
        return row, token

    @property
    def active(self) -> bool:
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)
