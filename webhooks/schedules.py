"""Periodic work of the webhooks app, created after every ``migrate`` (idempotent).

django-q2 runs schedules at most about once a minute; ``manage.py webhooks sweep --loop`` (which
``make run`` starts) sweeps every few seconds, and this schedule is the safety net when it is
not running.
"""


def ensure(**kwargs) -> None:
    from django_q.models import Schedule

    Schedule.objects.get_or_create(
        name="webhooks: sweep (due retries, expired leases)",
        defaults={
            "func": "webhooks.tasks.sweep",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
        },
    )
    Schedule.objects.get_or_create(
        name="webhooks: purge events past their retention",
        defaults={
            "func": "webhooks.tasks.purge_events",
            "schedule_type": Schedule.MINUTES,
            "minutes": 60,
            "repeats": -1,
        },
    )
