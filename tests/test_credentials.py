"""Credentials: encrypted at rest, masked in memory, audited, rotated with an overlap."""

from __future__ import annotations

import io
import logging
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection as db_connection
from django.utils import timezone

from connectors.choices import AuditAction, CredentialKind, CredentialState
from connectors.models import AuditEntry, Credential
from connectors.secrets import SecretUnreadable, UnreadableSecret, fingerprint
from connectors.services.credentials import (
    CredentialError,
    create_credential,
    current_credential,
    replace_secret,
    revoke_credential,
    rotate_credential,
)

pytestmark = pytest.mark.django_db


def raw_column(credential: Credential) -> bytes:
    with db_connection.cursor() as cursor:
        cursor.execute("SELECT value FROM connectors_credential WHERE id = %s", [credential.pk])
        return bytes(cursor.fetchone()[0])


def test_the_stored_column_holds_ciphertext_not_the_secret(credential, secret_value, settings):
    # when the credential is stored
    stored = raw_column(credential)
    # then the column is a Fernet token that only the configured key opens
    assert secret_value.encode() not in stored
    assert Fernet(settings.FERNET_KEYS[0]).decrypt(stored).decode() == secret_value
    # and reading it back gives a value that reveals only on request
    assert Credential.objects.get(pk=credential.pk).value.reveal() == secret_value


def test_a_decrypted_secret_prints_as_a_mask_everywhere(credential, secret_value, caplog):
    value = Credential.objects.get(pk=credential.pk).value
    logger = logging.getLogger("tests.secrets")
    with caplog.at_level(logging.INFO):
        logger.info("value is %s / %r", value, value)
    rendered = [str(value), repr(value), f"{value}", f"{value!r}", caplog.text, str(credential)]
    assert all(secret_value not in text for text in rendered)


def test_fingerprint_shows_at_most_the_last_four_characters(secret_value):
    assert fingerprint(secret_value).endswith(f"{secret_value[-4:]} ({len(secret_value)} chars)")
    assert secret_value[-5:] not in fingerprint(secret_value)
    short = "abc123xyz"
    assert "123" not in fingerprint(short) and "xyz" not in fingerprint(short)


@pytest.mark.parametrize(
    ("secret", "message"),
    [("", "empty"), (" padded-secret-value ", "white space"), ("x" * 20000, "longer than")],
)
def test_bad_secrets_are_refused_with_a_reason(connection, secret, message):
    with pytest.raises(CredentialError, match=message):
        create_credential(connection, CredentialKind.API_KEY, secret)
    assert not Credential.objects.exists()


def test_create_replace_and_revoke_are_audited_without_the_value(connection, make_staff):
    actor = make_staff(None)
    first, second = "first-" + "a" * 30, "second-" + "b" * 30
    credential = create_credential(connection, CredentialKind.API_KEY, first, actor=actor)
    replace_secret(credential, second, actor=actor)
    revoke_credential(credential, actor=actor, reason="leaked in a screenshot")

    actions = list(AuditEntry.objects.order_by("at", "id").values_list("action", flat=True))
    assert actions == [
        AuditAction.CREDENTIAL_CREATED,
        AuditAction.CREDENTIAL_REPLACED,
        AuditAction.CREDENTIAL_REVOKED,
    ]
    for entry in AuditEntry.objects.all():
        assert entry.actor == actor and entry.connection_name == "crm"
        text = " ".join(str(v) for v in entry.__dict__.values())
        assert first not in text and second not in text
    credential.refresh_from_db()
    assert credential.state == CredentialState.REVOKED
    assert credential.value.reveal() == ""  # the revoked secret is wiped, not kept
    with pytest.raises(CredentialError, match="revoked"):
        replace_secret(credential, "third-" + "c" * 30)


def test_rotation_overlap_keeps_the_old_secret_usable_until_it_ends(credential, secret_value):
    # given a rotation with a one-hour overlap
    new_secret = "rotated-" + "z" * 30
    until = timezone.now() + timedelta(hours=1)
    new = rotate_credential(credential, new_secret, overlap_until=until)
    credential.refresh_from_db()
    # then outbound calls use the new one, and both are usable during the overlap
    assert current_credential(credential.connection, CredentialKind.API_KEY) == new
    usable = Credential.objects.usable().filter(connection=credential.connection)
    assert {c.value.reveal() for c in usable} == {secret_value, new_secret}
    assert credential.state == CredentialState.RETIRING and credential.expires_at == until
    # and once the overlap has passed, only the new one is
    Credential.objects.filter(pk=credential.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert list(Credential.objects.usable().filter(connection=credential.connection)) == [new]


def test_a_secret_whose_key_was_removed_is_unreadable_and_survives_a_save(
    credential, secret_value, settings
):
    original_keys = list(settings.FERNET_KEYS)
    ciphertext = raw_column(credential)
    # given the key that encrypted it is no longer configured
    settings.FERNET_KEYS = [Fernet.generate_key().decode()]
    loaded = Credential.objects.get(pk=credential.pk)
    # then it loads, says so, and refuses to reveal
    assert isinstance(loaded.value, UnreadableSecret) and not loaded.readable
    assert str(loaded.value) == "unreadable: encryption key missing"
    with pytest.raises(SecretUnreadable, match="encryption key missing"):
        loaded.value.reveal()
    # and saving the row (a label edit) does not destroy the ciphertext
    loaded.label = "edited while unreadable"
    loaded.save()
    assert raw_column(credential) == ciphertext
    settings.FERNET_KEYS = original_keys
    assert Credential.objects.get(pk=credential.pk).value.reveal() == secret_value


def test_dumpdata_never_writes_the_secret(credential, secret_value):
    out = io.StringIO()
    call_command("dumpdata", "connectors", stdout=out)
    assert '"model": "connectors.credential"' in out.getvalue()
    assert secret_value not in out.getvalue()
