"""Storing, replacing, rotating and revoking credentials, each recorded in the audit trail.

Every function here takes the plaintext as ``secret`` and is wrapped in
``sensitive_variables``, so Django's error reports never show it.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from connectors.choices import AuditAction, CredentialKind, CredentialState
from connectors.models import AuditEntry, Connection, Credential
from connectors.secrets import SecretValue, fingerprint

__all__ = [
    "CredentialError",
    "check_secret",
    "create_credential",
    "current_credential",
    "record_audit",
    "replace_secret",
    "revoke_credential",
    "rotate_credential",
]

logger = logging.getLogger(__name__)

MAX_SECRET_LENGTH = 16384


class CredentialError(ValueError):
    """A credential operation was refused; the message says why (never with the secret)."""


def _actor_name(actor) -> str:
    if actor is None:
        return "system"
    return actor.get_username() or f"user #{actor.pk}"


def record_audit(action, *, actor=None, connection=None, credential=None, detail=""):
    """Append one entry to the audit trail."""
    return AuditEntry.objects.create(
        action=action,
        actor=actor,
        actor_name=_actor_name(actor),
        connection=connection,
        connection_name=connection.slug if connection else "",
        credential=credential,
        fingerprint=credential.fingerprint if credential else "",
        detail=detail,
    )


@sensitive_variables("secret")
def check_secret(secret) -> str:
    if isinstance(secret, SecretValue):
        secret = secret.reveal()
    if not isinstance(secret, str):
        raise CredentialError("A secret must be text.")
    if secret != secret.strip():
        raise CredentialError(
            "The secret starts or ends with white space; it was probably pasted with a line "
            "break. Paste it again without it."
        )
    if not secret:
        raise CredentialError("The secret is empty.")
    if len(secret) > MAX_SECRET_LENGTH:
        raise CredentialError(f"The secret is longer than {MAX_SECRET_LENGTH} characters.")
    return secret


@sensitive_variables("secret")
def create_credential(
    connection: Connection,
    kind: str,
    secret: str,
    *,
    actor=None,
    label: str = "",
    expires_at: datetime | None = None,
    rotate_by: datetime | None = None,
    state: str = CredentialState.ACTIVE,
    instance: Credential | None = None,
) -> Credential:
    """Store a new encrypted secret for ``connection``.

    ``instance`` lets the admin pass the unsaved object its form built, so that the object it
    goes on to log and redirect to is the one stored here.
    """
    secret = check_secret(secret)
    if kind not in CredentialKind.values:
        raise CredentialError(f"Unknown credential kind {kind!r}; known: {CredentialKind.values}")
    credential = instance if instance is not None else Credential()
    credential.connection = connection
    credential.kind = kind
    credential.label = label
    credential.value = SecretValue(secret)
    credential.fingerprint = fingerprint(secret)
    credential.state = state
    credential.expires_at = expires_at
    credential.rotate_by = rotate_by
    credential.created_by = actor
    with transaction.atomic():
        credential.save(force_insert=True)
        record_audit(
            AuditAction.CREDENTIAL_CREATED,
            actor=actor,
            connection=connection,
            credential=credential,
            detail=f"kind={kind}",
        )
    # said once it is true: inside a caller's transaction (integrations apply), only if that
    # transaction commits
    extra = {"connection": connection.slug, "credential_id": credential.pk, "kind": kind}
    transaction.on_commit(lambda: logger.info("credential created", extra=extra))
    return credential


@sensitive_variables("secret")
def replace_secret(credential: Credential, secret: str, *, actor=None) -> Credential:
    """Overwrite the secret of ``credential`` in place (same row, new value and fingerprint)."""
    secret = check_secret(secret)
    if credential.state == CredentialState.REVOKED:
        raise CredentialError("This credential is revoked: add a new one instead of replacing it.")
    previous = credential.fingerprint
    with transaction.atomic():
        credential.value = SecretValue(secret)
        credential.fingerprint = fingerprint(secret)
        credential.rotated_at = timezone.now()
        credential.save(update_fields=["value", "fingerprint", "rotated_at", "updated_at"])
        record_audit(
            AuditAction.CREDENTIAL_REPLACED,
            actor=actor,
            connection=credential.connection,
            credential=credential,
            detail=f"previous fingerprint {previous}",
        )
    return credential


@sensitive_variables("secret")
def rotate_credential(
    credential: Credential,
    secret: str,
    *,
    overlap_until: datetime,
    actor=None,
    label: str = "",
) -> Credential:
    """Start a rotation without downtime: a new active credential of the same kind, and the old
    one retiring (still usable) until ``overlap_until``. Returns the new credential."""
    if overlap_until <= timezone.now():
        raise CredentialError("The overlap must end in the future.")
    if credential.state == CredentialState.REVOKED:
        raise CredentialError("A revoked credential cannot be rotated; add a new one.")
    with transaction.atomic():
        new = create_credential(
            credential.connection,
            credential.kind,
            secret,
            actor=actor,
            label=label or credential.label,
            expires_at=None,
            rotate_by=None,
        )
        credential.state = CredentialState.RETIRING
        credential.expires_at = overlap_until
        credential.save(update_fields=["state", "expires_at", "updated_at"])
        record_audit(
            AuditAction.CREDENTIAL_RETIRING,
            actor=actor,
            connection=credential.connection,
            credential=credential,
            detail=f"replaced by credential #{new.pk}; accepted until {overlap_until.isoformat()}",
        )
    return new


def revoke_credential(credential: Credential, *, actor=None, reason: str = "") -> Credential:
    """Stop using a credential for good. Its ciphertext is wiped; the row stays for the audit."""
    if credential.state == CredentialState.REVOKED:
        return credential
    with transaction.atomic():
        credential.state = CredentialState.REVOKED
        credential.revoked_at = timezone.now()
        # Nothing may use a revoked secret again, so nothing needs to keep it.
        credential.value = SecretValue("")
        credential.save(update_fields=["state", "revoked_at", "value", "updated_at"])
        record_audit(
            AuditAction.CREDENTIAL_REVOKED,
            actor=actor,
            connection=credential.connection,
            credential=credential,
            detail=reason[:500],
        )
    return credential


def current_credential(connection: Connection, kind: str) -> Credential | None:
    """The credential of ``kind`` that outbound calls use: the newest usable active one, else
    the newest retiring one still inside its overlap."""
    # "active" sorts before "retiring": one query serves both preferences.
    assert CredentialState.ACTIVE < CredentialState.RETIRING  # noqa: S101
    return (
        Credential.objects.usable()
        .filter(connection=connection, kind=kind)
        .order_by("state", "-created_at", "-pk")
        .first()
    )
