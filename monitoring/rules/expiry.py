"""The expiry calendar: credentials with an expiry (keys, OAuth refresh tokens, a webhook
signing secret at the end of its rotation overlap), partner APIs that announced a ``Sunset``
date; warnings 30, 7 and 1 day before, and at once for an expired token or a connection that
needs reauthorisation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from django.utils.translation import gettext_lazy as _

from connectors.choices import ConnectionStatus, CredentialKind, CredentialState
from connectors.models import Connection, Credential
from monitoring.choices import Severity
from monitoring.rules import Rule, fmt_duration, fmt_time, register

ADVICE = {
    CredentialKind.REFRESH_TOKEN: _(
        "Reconnect the account (Connect on the connection's page) before the refresh token "
        "expires, or the hub can no longer renew its access."
    ),
    CredentialKind.WEBHOOK_SIGNING_SECRET: _(
        "The old signing secret stops being accepted then: make sure the partner signs with "
        "the new one (the refusals counter stays at 0)."
    ),
    "sunset": _(
        "The partner retires this API version then: move the connection to the version its "
        "deprecation notice names, and test the flows on the sandbox first."
    ),
}
DEFAULT_ADVICE = _(
    "Create the new secret at the partner, then Replace it on the credential's page (the old "
    "one keeps working until then); the rotation date moves with it."
)


@dataclass
class Expiry:
    """One entry of the calendar."""

    connection: Connection
    what: str
    kind: str
    at: datetime
    target_key: str


def parse_sunset(value: str) -> datetime | None:
    """The ``Sunset`` header's HTTP-date (RFC 8594), or an ISO date recorded by hand."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def calendar(now: datetime, horizon_days: int = 30) -> list[Expiry]:
    """Everything that expires within the horizon (or already has), soonest first."""
    horizon = now + timedelta(days=horizon_days)
    entries = []
    credentials = (
        Credential.objects.filter(
            state__in=(CredentialState.ACTIVE, CredentialState.RETIRING),
            expires_at__isnull=False,
            expires_at__lte=horizon,
        )
        .exclude(connection__status=ConnectionStatus.DISABLED)
        .select_related("connection")
    )
    refreshable = set(
        Credential.objects.filter(
            kind=CredentialKind.REFRESH_TOKEN, state=CredentialState.ACTIVE
        ).values_list("connection_id", flat=True)
    )
    for credential in credentials:
        # an access token with a refresh token is renewed by the engine: not an expiry
        if credential.kind == CredentialKind.ACCESS_TOKEN and (
            credential.connection_id in refreshable
        ):
            continue
        label = credential.label or credential.get_kind_display()
        entries.append(
            Expiry(
                credential.connection,
                f"{credential.get_kind_display()} '{label}'",
                credential.kind,
                credential.expires_at,
                f"credential:{credential.pk}",
            )
        )
    for connection in Connection.objects.exclude(sunset_date="").exclude(
        status=ConnectionStatus.DISABLED
    ):
        when = parse_sunset(connection.sunset_date)
        if when is not None and when <= horizon:
            entries.append(
                Expiry(connection, str(_("the partner's API version")), "sunset", when, "sunset")
            )
    return sorted(entries, key=lambda e: e.at)


@register
class ExpiryCalendar(Rule):
    key = "expiry"
    title = _("Expiry calendar")
    defaults = {"days": [30, 7, 1]}

    def evaluate(self, ctx):
        found = []
        for connection in ctx.connections:
            if connection.status != ConnectionStatus.REAUTH_REQUIRED:
                continue
            if ctx.params(self, connection_id=connection.pk) is None:
                continue
            found.append(
                self.connection_signal(
                    connection,
                    error_class="reauth_required",
                    severity=Severity.CRITICAL,
                    level=100,
                    summary=_("%(connection)s needs reauthorisation: %(reason)s")
                    % {
                        "connection": connection,
                        "reason": connection.status_reason or _("the partner refused its token"),
                    },
                    advice=_(
                        "Reconnect the account (Connect on the connection's page) or replace "
                        "the credential; then retry the failed events from this incident."
                    ),
                )
            )
        params_by_connection = {}
        for entry in calendar(ctx.now, horizon_days=max(self.defaults["days"]) + 1):
            connection = entry.connection
            if connection.pk not in params_by_connection:
                params_by_connection[connection.pk] = ctx.params(self, connection_id=connection.pk)
            params = params_by_connection[connection.pk]
            if params is None:
                continue
            days = sorted(params["days"], reverse=True)
            left = (entry.at - ctx.now).total_seconds()
            if left <= 0:
                level, severity = 100, Severity.CRITICAL
                summary = _("The %(what)s of %(connection)s expired at %(time)s") % {
                    "what": entry.what,
                    "connection": connection,
                    "time": fmt_time(entry.at),
                }
            else:
                passed = [d for d in days if left <= d * 86400]
                if not passed:
                    continue
                # the level grows as the date nears: 30 days → 1, 7 → 2, 1 → 3
                level = len(passed)
                severity = Severity.CRITICAL if passed[-1] == days[-1] else Severity.WARNING
                summary = _("The %(what)s of %(connection)s expires in %(left)s (%(time)s)") % {
                    "what": entry.what,
                    "connection": connection,
                    "left": fmt_duration(left),
                    "time": fmt_time(entry.at),
                }
            found.append(
                self.connection_signal(
                    connection,
                    error_class=entry.target_key,
                    level=level,
                    severity=severity,
                    summary=summary,
                    advice=ADVICE.get(entry.kind, DEFAULT_ADVICE),
                    details={"expires_at": entry.at.isoformat(), "kind": entry.kind},
                )
            )
        return found
