"""The encrypted model field used for every secret the hub stores."""

from __future__ import annotations

from django.utils.encoding import force_bytes
from fernet_fields import EncryptedTextField

from connectors.secrets import (
    InvalidToken,
    SecretValue,
    UnreadableSecret,
    current_fernet,
)

__all__ = ["EncryptedSecretField"]


class EncryptedSecretField(EncryptedTextField):
    """django-fernet-fields-v2's encrypted text, hardened for secrets.

    * reads give a :class:`~connectors.secrets.SecretValue` (masked when printed), or an
      :class:`~connectors.secrets.UnreadableSecret` instead of raising when the key is missing,
      so one bad row never breaks an admin page;
    * keys come from ``settings.FERNET_KEYS`` at each use rather than being cached on the field
      for the life of the process, so rotation works without a restart;
    * saving an unreadable value writes its original ciphertext back unchanged.
    """

    @property
    def fernet(self):  # the parent caches this per process; we follow the setting
        return current_fernet()

    def get_db_prep_save(self, value, connection):
        if value is None:
            return None
        if isinstance(value, UnreadableSecret):
            return connection.Database.Binary(value.ciphertext)
        if isinstance(value, SecretValue):
            value = value.reveal()
        token = self.fernet.encrypt(force_bytes(value))
        return connection.Database.Binary(token)

    def from_db_value(self, value, expression, connection, *args):
        if value is None:
            return None
        token = bytes(value)
        try:
            return SecretValue(self.fernet.decrypt(token).decode("utf-8"))
        except InvalidToken:
            return UnreadableSecret(token)

    def to_python(self, value):
        if value is None or isinstance(value, SecretValue):
            return value
        return SecretValue(str(value))

    def value_to_string(self, obj):
        # Serialisation (dumpdata, fixtures) never writes the plaintext.
        return ""
