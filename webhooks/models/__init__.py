"""Models of the webhooks app."""

from webhooks.models.endpoint import WebhookEndpoint
from webhooks.models.event import EventAttempt, WebhookEvent

__all__ = ["EventAttempt", "WebhookEndpoint", "WebhookEvent"]
