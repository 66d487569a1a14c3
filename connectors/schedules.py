"""Cron schedules that follow a configuration object (a flow, a sync job): created, changed or
removed when the object is saved, so the django-q2 schedule never disagrees with it."""

from __future__ import annotations


def follow(name: str, func: str, args: tuple, cron: str, active: bool) -> None:
    """Keep the cron schedule ``name`` running ``func(*args)`` while ``active``; else remove it."""
    from django_q.models import Schedule

    if active and cron:
        Schedule.objects.update_or_create(
            name=name,
            defaults={
                "func": func,
                "args": repr(args),
                "schedule_type": Schedule.CRON,
                "cron": cron,
                "repeats": -1,
            },
        )
    else:
        Schedule.objects.filter(name=name).delete()
