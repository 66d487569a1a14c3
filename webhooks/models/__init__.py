"""Models of the webhooks app."""

from webhooks.models.endpoint import EndpointRefusals, RefusalKind, WebhookEndpoint
from webhooks.models.event import EventAttempt, WebhookEvent

__all__ = ["EndpointRefusals", "EventAttempt", "RefusalKind", "WebhookEndpoint", "WebhookEvent"]
