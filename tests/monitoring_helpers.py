"""Helpers of the monitoring tests: the SMTP inbox (aiosmtpd) behind the ``smtp`` fixture, and
channels aimed at the local receivers (the ``receiver`` fixture plays Slack, Teams and the
site's webhook receiver)."""

from __future__ import annotations

import socket
from email import message_from_bytes, policy

from connectors.choices import CredentialKind
from connectors.models import Connection
from connectors.services.credentials import create_credential
from monitoring.models import Channel


def samples(text: str) -> dict[tuple, float]:
    """A /metrics exposition as {(sample name, sorted labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Inbox:
    """What the SMTP server received: one parsed message per delivery."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append((list(envelope.rcpt_tos), message))
        return "250 OK"

    def bodies(self) -> list[str]:
        return [m.get_body(("plain",)).get_content() for _, m in self.messages]

    def subjects(self) -> list[str]:
        return [str(m["Subject"]) for _, m in self.messages]


def slack_channel(receiver, secret_path: str, **fields) -> Channel:
    connection = Connection.objects.create(
        name="Slack",
        slug="slack-alerts",
        base_url=receiver.url,
        auth_method="none",
        connect_timeout=1,
        read_timeout=2,
    )
    create_credential(connection, CredentialKind.OTHER, secret_path, label="incoming webhook")
    return Channel.objects.create(
        slug="ops-slack", name="Ops on Slack", kind="slack", connection=connection, **fields
    )


def email_channel(**fields) -> Channel:
    return Channel.objects.create(
        slug="ops-mail", name="Ops by email", kind="email", recipients="ops@example.test", **fields
    )
