"""The pre-production gate: what the brief's checklist asks before going live, as small check
functions with stable ids and a hint that says how to fix (as Django's ``check --deploy`` is
written).

Run it with ``manage.py check --deploy --tag integrations --database default --fail-level
WARNING`` (CI), or read it per connection on the connection's page. It looks at production
connections, their webhook endpoints and flows; sandbox connections are for trying things and
are not gated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks
from django.db import DatabaseError
from django.utils import timezone

from connectors.choices import AuthMethod, CredentialState, Environment
from connectors.models import Connection, Credential
from connectors.oauth.scopes import broad_scopes
from connectors.registry import Registry

__all__ = ["CATEGORIES", "GATE", "Finding", "findings", "system_check"]

CATEGORIES = ["Auth", "Secrets", "Flows", "Errors", "Idempotency", "Logs", "Monitoring", "GDPR"]

GATE = Registry("gate check")


@dataclass
class Finding:
    id: str
    level: str  # "error" or "warning"
    category: str
    message: str
    hint: str
    connection_id: int | None = None

    def as_check_message(self):
        kind = checks.Error if self.level == "error" else checks.Warning
        return kind(self.message, hint=self.hint, id=f"hub.{self.id}")


@dataclass
class Check:
    id: str
    level: str
    category: str
    function: object


def check(id: str, level: str, category: str):
    """Register a gate check: ``function(ctx)`` yields ``(connection or None, message, hint)``."""

    def decorate(function):
        GATE.add(id, Check(id, level, category, function))
        return function

    return decorate


class Context:
    """What the checks share: the production connections and what hangs on them."""

    def __init__(self, connections=None):
        self._only = connections

    @cached_property
    def connections(self) -> list[Connection]:
        if self._only is not None:
            return [c for c in self._only if c.environment == Environment.PRODUCTION]
        return list(
            Connection.objects.filter(environment=Environment.PRODUCTION)
            .exclude(status="disabled")
            .order_by("slug")
        )

    @cached_property
    def ids(self) -> set[int]:
        return {c.pk for c in self.connections}

    @cached_property
    def endpoints(self):
        from webhooks.models import WebhookEndpoint

        return list(
            WebhookEndpoint.objects.filter(connection_id__in=self.ids, enabled=True)
            .select_related("connection")
            .order_by("slug")
        )

    @cached_property
    def flows(self):
        from flows.models import Flow

        return list(
            Flow.objects.filter(enabled=True)
            .filter(connection_id__in=self.ids)
            .select_related("connection", "mapping", "endpoint")
            .order_by("slug")
        )


def findings(connections=None) -> list[Finding]:
    """Every finding of every check, for all production connections (or only these)."""
    from governance import checks as _registered  # noqa: F401 (the checks register themselves)

    ctx = Context(connections)
    out = []
    for key in sorted(GATE):
        item = GATE[key]
        for connection, message, hint in item.function(ctx):
            out.append(
                Finding(
                    item.id,
                    item.level,
                    item.category,
                    str(message),  # in the active language, now
                    str(hint),
                    connection.pk if connection is not None else None,
                )
            )
    return out


def system_check(app_configs=None, databases=None, **kwargs):
    """The gate as Django system checks (``check --deploy --tag integrations --database
    default``). It reads the configuration from the database, so, like Django's own database
    checks, it runs only when a database is named; otherwise it says how to run it."""
    if not databases:
        return [
            checks.Info(
                "The integrations gate reads the hub's configuration and was not run.",
                hint="Run manage.py check --deploy --tag integrations --database default "
                "--fail-level WARNING.",
                id="hub.I001",
            )
        ]
    try:
        return [finding.as_check_message() for finding in findings()]
    except DatabaseError as exc:
        return [
            checks.Error(
                f"The gate cannot read the hub's configuration ({type(exc).__name__}).",
                hint="Run manage.py migrate against this database first, then the gate.",
                id="hub.E000",
            )
        ]


def is_http(url: str) -> bool:
    return urlsplit(url or "").scheme == "http"


def expiring(ctx, days: int = 7):
    soon = timezone.now() + timedelta(days=days)
    return Credential.objects.filter(
        connection_id__in=ctx.ids,
        state__in=(CredentialState.ACTIVE, CredentialState.RETIRING),
        expires_at__lte=soon,
    ).select_related("connection")


def oauth_connections(ctx):
    return [c for c in ctx.connections if c.auth_method == AuthMethod.OAUTH2]


def debug_or_sandbox() -> list[str]:
    return [name for name in ("DEBUG", "SANDBOX_ENABLED") if getattr(settings, name, False)]


def broad(connection) -> list[str]:
    return broad_scopes(connection.granted_scopes or [])
