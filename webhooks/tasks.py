"""django-q2 tasks of the webhooks app: each receives a primary key and calls a service."""

from webhooks.services import processing


def process_event(pk: int) -> str:
    return processing.process_event(pk)


def sweep() -> dict:
    return processing.sweep()


def purge_events() -> int:
    return processing.purge_old_events()
