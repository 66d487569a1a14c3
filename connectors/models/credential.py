"""Credentials: the encrypted secrets of a connection."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from connectors.choices import CredentialKind, CredentialState
from connectors.fields import EncryptedSecretField


class CredentialQuerySet(models.QuerySet):
    def usable(self):
        """Credentials that may be used now: active or retiring, not revoked, not expired."""
        now = timezone.now()
        return self.filter(state__in=[CredentialState.ACTIVE, CredentialState.RETIRING]).exclude(
            expires_at__lte=now
        )


class Credential(models.Model):
    """One secret of a connection, encrypted at rest with Fernet (``FERNET_KEYS``).

    The value is never shown back: the console shows its fingerprint. It is replaced, never read.
    Two credentials of one kind may be usable at once (a rotation overlap): the newest active one
    is used for outbound calls, and every usable one is accepted for inbound verification.
    """

    connection = models.ForeignKey(
        "connectors.Connection",
        on_delete=models.CASCADE,
        related_name="credentials",
        help_text=_("The connection this secret belongs to."),
        verbose_name=_("connection"),
    )
    kind = models.CharField(
        max_length=30,
        choices=CredentialKind.choices,
        help_text=_("What the secret is for."),
        verbose_name=_("kind"),
    )
    label = models.CharField(
        max_length=120,
        blank=True,
        help_text=_("Optional note to tell two credentials apart, e.g. 'key created 2026-11'."),
        verbose_name=_("label"),
    )
    value = EncryptedSecretField(
        help_text=_("The secret, Fernet-encrypted in the database. Write-only: never displayed."),
        verbose_name=_("value"),
    )
    fingerprint = models.CharField(
        max_length=60,
        editable=False,
        help_text=_(
            "What can be shown of the secret: its length, and its last 4 characters when "
            "it is long enough that they reveal nothing useful."
        ),
        verbose_name=_("fingerprint"),
    )
    state = models.CharField(
        max_length=20,
        choices=CredentialState.choices,
        default=CredentialState.ACTIVE,
        help_text=_(
            "Active: in use. Retiring: still accepted during a rotation overlap. Revoked: "
            "never used again."
        ),
        verbose_name=_("state"),
    )
    expires_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_(
            "When the partner stops accepting it (empty: no known expiry). Alerts look at this."
        ),
        verbose_name=_("expires at"),
    )
    rotate_by = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("Policy date by which the secret should be rotated."),
        verbose_name=_("rotate by"),
    )
    rotated_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text=_("When the secret was last replaced."),
        verbose_name=_("rotated at"),
    )
    revoked_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text=_("When it was revoked."),
        verbose_name=_("revoked at"),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
        help_text=_("Who stored it."),
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(
        default=timezone.now,
        editable=False,
        help_text=_("Stored at."),
        verbose_name=_("created at"),
    )
    updated_at = models.DateTimeField(
        auto_now=True, help_text=_("Last changed at."), verbose_name=_("updated at")
    )

    objects = CredentialQuerySet.as_manager()

    class Meta:
        verbose_name = _("credential")
        verbose_name_plural = _("credentials")
        ordering = ["connection", "kind", "-created_at"]
        indexes = [models.Index(fields=["connection", "kind", "state"])]

    def __str__(self) -> str:
        label = f" {self.label}" if self.label else ""
        return f"{self.get_kind_display()}{label} {self.fingerprint}"

    @property
    def readable(self) -> bool:
        """False when the key that encrypted this secret is no longer configured."""
        return self.value is None or self.value.readable

    @property
    def usable(self) -> bool:
        if self.state == CredentialState.REVOKED:
            return False
        return not (self.expires_at and self.expires_at <= timezone.now())
