"""django-q2 tasks of monitoring: thin, they call the services."""

from __future__ import annotations

from monitoring.rules.hub import beat
from monitoring.services import incidents, notify, rollups


def heartbeat() -> None:
    beat()


def run_pass() -> None:
    incidents.run_pass()


def compact() -> None:
    rollups.compact()


def digest() -> None:
    notify.send_digests()
