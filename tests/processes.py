"""Helpers for tests that start real processes of the hub against the test database."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent


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


def start(argv: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", *argv],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to the main process only (qcluster stops its own children), then make sure
    nothing of its process group is left."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def restart_until_processed(
    env: dict[str, str],
    event_pk: int,
    timeout: float = 90,
    *,
    also=None,
    what: str = "the further condition",
) -> None:
    """Start a cluster and a sweeper (after a crash, or to have a real worker process the
    event), wait until the event is processed (and ``also()`` holds, if given: what the
    sweeper does in a later pass), and stop them."""
    from webhooks.models import WebhookEvent

    cluster = start(["qcluster"], env)
    sweeper = start(["webhooks", "sweep", "--loop", "--every", "1"], env)
    try:
        wait_for(
            lambda: WebhookEvent.objects.get(pk=event_pk).status == "processed",
            timeout,
            "the event to be processed after the restart",
        )
        if also is not None:
            wait_for(also, timeout, what)
    finally:
        stop(sweeper)
        stop(cluster)


def purge_queue():
    from django_q.brokers import get_broker

    get_broker().purge_queue()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def dead_redis_broker():
    """A django-q2 Redis broker whose Redis does not answer (nothing listens on its port): every
    call is refused at once, not after redis-py's own retries."""
    import redis
    from django_q.brokers.redis_broker import Redis as RedisBroker
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    down = RedisBroker.__new__(RedisBroker)  # its __init__ would connect to the settings' Redis
    down.list_key = "django_q:outage-test:q"
    down.connection = redis.Redis(
        host="127.0.0.1",
        port=free_port(),
        socket_connect_timeout=1,
        socket_timeout=1,
        retry=Retry(NoBackoff(), 0),
    )
    return down
