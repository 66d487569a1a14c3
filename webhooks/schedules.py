"""Periodic work of the webhooks app, created after every ``migrate`` (idempotent).

django-q2 runs schedules at most about once a minute; ``manage.py webhooks sweep --loop`` (which
``make run`` starts) sweeps every few seconds, and this schedule is the safety net when it is
not running.
"""

from connectors.periodic import every


def ensure(**kwargs) -> None:
    every(1, "webhooks: sweep (due retries, expired leases)", "webhooks.tasks.sweep")
    every(5, "webhooks: purge events past their retention", "webhooks.tasks.purge_events")
    every(5, "webhooks: drop bodies past their payload retention", "webhooks.tasks.drop_bodies")
