"""Periodic django-q2 schedules of the apps, created after every ``migrate`` (idempotent: an
existing schedule, perhaps tuned by an operator, is left as it is)."""

from __future__ import annotations

__all__ = ["every"]


def every(minutes: int, name: str, func: str) -> None:
    """Make sure the schedule ``name`` runs ``func`` (a dotted path) every ``minutes``."""
    from django_q.models import Schedule

    Schedule.objects.get_or_create(
        name=name,
        defaults={
            "func": func,
            "schedule_type": Schedule.MINUTES,
            "minutes": minutes,
            "repeats": -1,
        },
    )
