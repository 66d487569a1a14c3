"""``manage.py rotate_fernet_keys``: after it, the old key is no longer needed."""

from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command

from connectors.choices import AuditAction, CredentialKind
from connectors.models import AuditEntry, Credential
from connectors.services.credentials import create_credential

pytestmark = pytest.mark.django_db


def rotate(batch_size: int = 2) -> str:
    out = io.StringIO()
    call_command("rotate_fernet_keys", batch_size=batch_size, stdout=out, stderr=out)
    return out.getvalue()


def test_rotation_makes_the_old_key_unnecessary(connection, settings):
    # given five secrets encrypted under an old key
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FERNET_KEYS = [old_key]
    secrets = {f"secret-number-{i}-" + "q" * 20 for i in range(5)}
    for secret in secrets:
        create_credential(connection, CredentialKind.API_KEY, secret)
    # when the new key is put first and the command runs (in batches smaller than the table)
    settings.FERNET_KEYS = [new_key, old_key]
    output = rotate(batch_size=2)
    assert "connectors.Credential.value: 5 re-encrypted, 0 already" in output
    assert "the others can go" in output
    # then the old key can be dropped and every secret still reads
    settings.FERNET_KEYS = [new_key]
    assert {c.value.reveal() for c in Credential.objects.all()} == secrets
    entry = AuditEntry.objects.get(action=AuditAction.FERNET_KEYS_ROTATED)
    assert entry.actor_name == "system" and "5 re-encrypted" in entry.detail


def test_rotation_is_idempotent(connection, settings):
    create_credential(connection, CredentialKind.API_KEY, "idempotent-" + "w" * 20)
    settings.FERNET_KEYS = [Fernet.generate_key().decode(), *settings.FERNET_KEYS]
    assert "1 re-encrypted" in rotate()
    second = rotate()
    assert "0 re-encrypted, 1 already under the primary key" in second


def test_rotation_reports_values_no_key_can_open(connection, settings):
    create_credential(connection, CredentialKind.API_KEY, "orphaned-" + "v" * 20)
    # the key that encrypted it is gone entirely
    settings.FERNET_KEYS = [Fernet.generate_key().decode()]
    output = rotate()
    assert "1 unreadable" in output
    assert "do NOT remove old keys" in output
