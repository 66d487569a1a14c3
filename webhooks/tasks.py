"""django-q2 tasks of the webhooks app: each receives what names its object (an event's primary
key, or its endpoint and event id) and calls a service."""

from webhooks.models import WebhookEvent
from webhooks.services import processing


def process_event(pk: int) -> str:
    return processing.process_event(pk)


def process_delivery(endpoint_id: int, event_id: str) -> str:
    """The task earlier versions queued with the ORM broker (by endpoint and event id, built
    before the event row had a key); kept for such tasks still waiting in a queue."""
    pk = (
        WebhookEvent.objects.filter(endpoint_id=endpoint_id, event_id=event_id)
        .values_list("pk", flat=True)
        .first()
    )
    return "skipped" if pk is None else processing.process_event(pk)


def sweep() -> dict:
    return processing.sweep()


def purge_events() -> int:
    return processing.purge_old_events()


def drop_bodies() -> int:
    return processing.drop_old_bodies()
