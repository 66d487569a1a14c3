"""What the calling channels share: a POST through the engine with the channel's connection."""

from __future__ import annotations

from connectors.engine.client import call
from connectors.engine.errors import HubError
from connectors.secrets import SecretUnreadable
from connectors.services.credentials import current_credential
from monitoring.channels import ChannelError


def connection_of(channel):
    if channel.connection is None:
        raise ChannelError(f"channel {channel.slug} has no connection to send through")
    return channel.connection


def secret_of(channel, kind: str, what: str) -> str:
    credential = current_credential(connection_of(channel), kind)
    if credential is None:
        raise ChannelError(f"channel {channel.slug}: its connection has no {what}")
    try:
        return credential.value.reveal()
    except SecretUnreadable:
        raise ChannelError(
            f"channel {channel.slug}: the {what} cannot be decrypted (FERNET_KEYS)"
        ) from None


def post(channel, path: str, payload, *, headers=None, log_path: str = "", data=None) -> str:
    """POST through the engine; the correlation id of the call, or :class:`ChannelError`."""
    try:
        response = call(
            connection_of(channel),
            "POST",
            path,
            json=payload if data is None else None,
            data=data,
            headers=headers,
            log_path=log_path,
            max_attempts=2,
        )
    except HubError as error:
        # the engine's messages never carry a secret; the path is not in them either
        raise ChannelError(error.message, error.correlation_id) from None
    return response.correlation_id
