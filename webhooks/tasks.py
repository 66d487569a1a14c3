"""django-q2 tasks of the webhooks app: each receives a primary key and calls a service."""

from webhooks.services import processing


def process_event(pk: int) -> str:
    return processing.process_event(pk)


def sweep() -> dict:
    return processing.sweep()
