"""Notification channels: one small class per kind, registered by key.

A channel class turns a :class:`~monitoring.messages.Message` into one delivery. Every kind
that calls out goes through the outbound engine with the channel's connection (timeouts, SSRF
guard, the call log), and raises :class:`ChannelError` with a message free of secrets when the
delivery fails.
"""

from __future__ import annotations

import importlib

from connectors.registry import Registry

__all__ = ["CHANNELS", "ChannelError", "load", "register"]

CHANNELS = Registry("notification channel")
MODULES = ["email", "slack", "teams", "webhook"]


class ChannelError(Exception):
    """A delivery failed; the message names why, never a secret."""

    def __init__(self, message: str, correlation_id: str = ""):
        super().__init__(message)
        self.message = message
        self.correlation_id = correlation_id


def register(cls):
    CHANNELS.add(cls.kind, cls())
    return cls


def load() -> None:
    for name in MODULES:
        importlib.import_module(f"monitoring.channels.{name}")
