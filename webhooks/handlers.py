"""Python handlers that site code registers for webhook events.

    from webhooks.handlers import handler

    @handler(endpoint="stripe", event_type="payment_intent.succeeded")
    def on_payment(event):
        ...  # event.payload, event.event_type, event.correlation_id, event.event_id

``event_type`` may end in ``*`` (``"invoice.*"``) or be ``"*"``. A handler that looked at the
event and found nothing to do for it returns :data:`NOT_HANDLED` (the flows app's does when no
flow matches); an event that no handler took ends as *unhandled*, not *processed*, so that an
operator sees what the hub receives and nobody acts on. A handler raising
``connectors.engine.errors.PermanentError`` (or a ``HandlerPermanentError``) fails the event at
once; any other exception is transient and retried. Handlers must be idempotent: an event may
be delivered to them more than once (at-least-once processing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase

from connectors.registry import Registry

__all__ = [
    "NOT_HANDLED",
    "HandlerPermanentError",
    "ParsedEvent",
    "handler",
    "handlers_for",
    "registry",
]

NOT_HANDLED = "not handled"  # what a handler returns when the event was not for it


class HandlerPermanentError(Exception):
    """Raised by a handler when retrying cannot help (bad data): the event fails at once."""


@dataclass(frozen=True)
class ParsedEvent:
    pk: int
    endpoint: str
    event_id: str
    event_type: str
    payload: object
    correlation_id: str
    attempt: int


# keyed by (endpoint, event type pattern, the function's dotted name): the same handler
# registered twice for the same events is an error, not a handler that runs twice
registry: Registry = Registry("webhook handler")


def handler(*, endpoint: str, event_type: str = "*"):
    """Register ``func(event: ParsedEvent)`` for an endpoint slug and an event type pattern."""

    def decorate(func):
        name = f"{func.__module__}.{func.__qualname__}"
        registry.add((endpoint, event_type, name), (endpoint, event_type, func))
        return func

    return decorate


def handlers_for(endpoint: str, event_type: str) -> list[Callable]:
    return [
        func
        for slug, pattern, func in registry.values()
        if slug in (endpoint, "*") and fnmatchcase(event_type or "", pattern)
    ]
