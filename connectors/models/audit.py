"""The audit trail of everything done to secrets, and to one person's data (the GDPR desk)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from connectors.choices import AuditAction


class AuditEntry(models.Model):
    """Who did what to which secret, or to whose personal data, and when. Never the value: a
    fingerprint at most, and for the GDPR desk the kind of identifier and the rows touched.

    Written by the credential services, the key rotation command and the GDPR desk (its
    receipts); read-only in the console.
    """

    at = models.DateTimeField(
        default=timezone.now, db_index=True, help_text=_("When it happened."), verbose_name=_("at")
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_("The user who did it (empty: a command or the system)."),
        verbose_name=_("actor"),
    )
    actor_name = models.CharField(
        max_length=150,
        help_text=_(
            "Name of the actor at the time, kept if the user is deleted ('system' for commands)."
        ),
        verbose_name=_("actor name"),
    )
    action = models.CharField(
        max_length=40, choices=AuditAction.choices, help_text=_("What."), verbose_name=_("action")
    )
    connection = models.ForeignKey(
        "connectors.Connection",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_("The connection concerned, if any."),
        verbose_name=_("connection"),
    )
    connection_name = models.CharField(
        max_length=200,
        blank=True,
        help_text=_("The connection's slug at the time."),
        verbose_name=_("connection name"),
    )
    credential = models.ForeignKey(
        "connectors.Credential",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_("The credential concerned, if any."),
        verbose_name=_("credential"),
    )
    fingerprint = models.CharField(
        max_length=60,
        blank=True,
        help_text=_("The credential's fingerprint (never its value)."),
        verbose_name=_("fingerprint"),
    )
    detail = models.TextField(
        blank=True, help_text=_("More about it (counts, reasons)."), verbose_name=_("detail")
    )

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit trail")
        ordering = ["-at", "-id"]
        # the GDPR desk reads every stored payload and can erase: a permission of its own
        permissions = [("use_gdpr_desk", "Can find, export and erase one person's data")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_name}: {self.get_action_display()}"
