"""Models of the webhooks app."""

from webhooks.models.endpoint import (
    RECENT_REFUSALS,
    EndpointRefusals,
    RefusalKind,
    RefusedDelivery,
    WebhookEndpoint,
)
from webhooks.models.event import EventAttempt, WebhookEvent

__all__ = [
    "RECENT_REFUSALS",
    "EndpointRefusals",
    "EventAttempt",
    "RefusalKind",
    "RefusedDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
]
