"""Helpers for tests that start real processes of the hub against the test database."""

from __future__ import annotations

import os

from django.conf import settings


def shared_database_url() -> str:
    """A DATABASE_URL that points another process at the database this test run uses."""
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return (
        f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}"
    )


def hub_process_env(**extra: str) -> dict[str, str]:
    """The environment of a hub process (worker, sweeper, caller) sharing this test run's
    database, cache, broker and development keys."""
    return {
        **os.environ,
        "DATABASE_URL": shared_database_url(),
        "DEBUG": "true",
        "HUB_VAR_DIR": str(settings.VAR_DIR),
        "LOG_LEVEL": "WARNING",
        **extra,
    }
