"""``/health/`` (liveness: the process answers) and ``/ready/`` (readiness: the database, the
cache, the task broker, a worker heartbeat and the backlog), on ``django-health-check``.

A failing part is named in the answer (``?format=json`` or ``Accept: application/json``) and the
status is 503, as load balancers and Kubernetes expect from a readiness probe (the library's
own view answers 500)."""

from __future__ import annotations

import dataclasses
import datetime
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import connections
from health_check.base import HealthCheck
from health_check.checks import Cache, Database
from health_check.exceptions import ServiceUnavailable, ServiceWarning
from health_check.views import HealthCheckView

from monitoring.rules.backlog import backlog
from monitoring.rules.hub import workers_problem


@dataclasses.dataclass
class Broker(HealthCheck):
    """The task queue's broker answers (Redis, or the database for the ORM broker)."""

    timeout = datetime.timedelta(seconds=3)

    def run(self):
        from django_q.brokers import get_broker

        try:
            alive = get_broker().ping()
        except Exception as exc:  # any client error means the same: no broker
            raise ServiceUnavailable(
                f"the task broker does not answer ({type(exc).__name__})"
            ) from None
        if not alive:
            raise ServiceUnavailable("the task broker does not answer")


@dataclasses.dataclass
class Workers(HealthCheck):
    """A worker ran the heartbeat task recently: the workers and their scheduler run."""

    def run(self):
        problem = workers_problem(settings.HUB_READY_HEARTBEAT_SECONDS)
        if problem is not None:
            raise ServiceUnavailable(problem[1])


@dataclasses.dataclass
class Queue(HealthCheck):
    """The oldest event waiting to be processed is not too old."""

    def run(self):
        from django.utils import timezone

        pending, age = backlog(timezone.now())
        limit = settings.HUB_READY_BACKLOG_SECONDS
        if age > limit:
            raise ServiceWarning(
                f"{pending} event(s) pending, the oldest for {int(age)} s (limit {limit} s)"
            )


class ClosingExecutor(ThreadPoolExecutor):
    """Runs the synchronous checks in threads that close their database connections when a
    check ends: the library's default (the event loop's executor) would leave one open per
    thread and per probe."""

    def submit(self, fn, /, *args, **kwargs):
        def run():
            try:
                return fn(*args, **kwargs)
            finally:
                connections.close_all()

        return super().submit(run)


class ReadyView(HealthCheckView):
    checks = (Database, Cache, Broker, Workers, Queue)

    def get_executor(self):
        return ClosingExecutor(max_workers=4, thread_name_prefix="hub-ready")

    async def get(self, request, *args, **kwargs):
        response = await super().get(request, *args, **kwargs)
        if response.status_code == 500:
            response.status_code = 503
        return response


class LiveView(HealthCheckView):
    """Liveness: the process answers; nothing else is checked (a database outage must not
    make an orchestrator restart every web process)."""

    checks = ()
