"""Models of the webhooks app (endpoints and events arrive with the inbound webhooks issue)."""
