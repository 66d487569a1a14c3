"""The gate's checks, one small function each (ids are stable: docs/governance.md lists them).

Each yields ``(connection or None, message, hint)``. Messages name the object and never a
secret: the test-key check reads a key's first characters in memory and says only which
format it matched.
"""

from __future__ import annotations

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from connectors.choices import CredentialKind
from connectors.secrets import SecretUnreadable
from connectors.services.credentials import current_credential
from governance.gate import broad, check, debug_or_sandbox, expiring, is_http, oauth_connections

# Known formats of test keys: a production connection using one talks to the partner's test
# mode (payments that are not real, messages that are never sent).
TEST_KEY_PREFIXES = {
    "sk_test_": "Stripe test secret key",
    "rk_test_": "Stripe test restricted key",
    "pk_test_": "Stripe test publishable key",
    "test_": "Mollie test API key",
    "sandbox_": "a sandbox key",
    "SB-": "a sandbox key",
}
KEY_KINDS = (CredentialKind.API_KEY, CredentialKind.ACCESS_TOKEN, CredentialKind.BASIC_PASSWORD)
MAX_TIMEOUT = 30.0
MAX_TOLERANCE = 300


@check("E001", "error", "Auth")
def http_base_url(ctx):
    for connection in ctx.connections:
        if is_http(connection.base_url):
            yield (
                connection,
                _("Production connection %(slug)s calls %(url)s over plain http.")
                % {"slug": connection.slug, "url": connection.base_url},
                _("Use the partner's https URL: over http the key and the data travel in clear."),
            )


@check("E002", "error", "Secrets")
def test_key_in_production(ctx):
    for connection in ctx.connections:
        for kind in KEY_KINDS:
            credential = current_credential(connection, kind)
            if credential is None:
                continue
            try:
                secret = credential.value.reveal()
            except SecretUnreadable:
                continue  # the hub check (monitoring) says so
            match = next(
                (label for p, label in TEST_KEY_PREFIXES.items() if secret.startswith(p)), None
            )
            del secret
            if match:
                yield (
                    connection,
                    _(
                        "Production connection %(slug)s uses what looks like a %(match)s "
                        "(credential '%(credential)s')."
                    )
                    % {
                        "slug": connection.slug,
                        "match": match,
                        "credential": credential.label or credential.kind,
                    },
                    _(
                        "Replace it with the live key from the partner's dashboard, or set the "
                        "connection's environment to sandbox."
                    ),
                )


@check("E003", "error", "Auth")
def unsigned_endpoint(ctx):
    for endpoint in ctx.endpoints:
        if endpoint.unsigned:
            yield (
                endpoint.connection,
                _(
                    "Webhook endpoint %(endpoint)s of production connection %(slug)s accepts "
                    "unsigned deliveries."
                )
                % {"endpoint": endpoint.slug, "slug": endpoint.connection.slug},
                _(
                    "Choose the partner's verification scheme and add its signing secret; "
                    "anyone who knows the URL can post to an unsigned endpoint."
                ),
            )


@check("W001", "warning", "Auth")
def wide_tolerance(ctx):
    for endpoint in ctx.endpoints:
        if endpoint.timestamp_tolerance_seconds > MAX_TOLERANCE:
            yield (
                endpoint.connection,
                _("Webhook endpoint %(endpoint)s accepts timestamps %(seconds)s s old.")
                % {"endpoint": endpoint.slug, "seconds": endpoint.timestamp_tolerance_seconds},
                _(
                    "Keep the tolerance at %(max)s s or less: a longer window lets a captured "
                    "delivery be replayed later."
                )
                % {"max": MAX_TOLERANCE},
            )


@check("W002", "warning", "Errors")
def timeouts(ctx):
    for connection in ctx.connections:
        for name in ("connect_timeout", "read_timeout"):
            value = getattr(connection, name)
            if not value or value > MAX_TIMEOUT:
                yield (
                    connection,
                    _("Production connection %(slug)s has a %(name)s of %(value)s s.")
                    % {
                        "slug": connection.slug,
                        "name": name.replace("_", " "),
                        "value": value or _("none"),
                    },
                    _(
                        "Set it between 1 and %(max)s s: a hanging partner then holds a worker "
                        "for seconds, not minutes."
                    )
                    % {"max": f"{MAX_TIMEOUT:.0f}"},
                )


@check("W003", "warning", "Auth")
def broad_or_unneeded_scopes(ctx):
    needed: dict[int, set[str]] = {}
    for flow in ctx.flows:
        needed.setdefault(flow.connection_id, set()).update(flow.required_scopes or [])
    for connection in ctx.connections:
        granted = set(connection.granted_scopes or [])
        flagged = broad(connection)
        if flagged:
            yield (
                connection,
                _("Production connection %(slug)s was granted broad scopes: %(scopes)s.")
                % {"slug": connection.slug, "scopes": ", ".join(sorted(flagged))},
                _(
                    "Ask only for the scopes its flows need (least privilege); a leaked token "
                    "then opens less."
                ),
            )
        extra = granted - needed.get(connection.pk, set())
        if needed.get(connection.pk) and extra:
            yield (
                connection,
                _("Production connection %(slug)s holds scopes no flow needs: %(scopes)s.")
                % {"slug": connection.slug, "scopes": ", ".join(sorted(extra))},
                _("Remove them from the requested scopes and reconnect the account."),
            )


@check("W004", "warning", "GDPR")
def no_purpose(ctx):
    for connection in ctx.connections:
        if not (connection.purpose or "").strip():
            yield (
                connection,
                _("Production connection %(slug)s has no purpose.") % {"slug": connection.slug},
                _(
                    "Write why personal data goes to this partner (GDPR art. 5 and 30): the "
                    "processing register is built from it."
                ),
            )


@check("W005", "warning", "GDPR")
def no_retention(ctx):
    for connection in ctx.connections:
        if not connection.retention_days:
            yield (
                connection,
                _("Production connection %(slug)s has no retention.") % {"slug": connection.slug},
                _("Set how many days its events, calls and runs are kept; they are then purged."),
            )


@check("W006", "warning", "Monitoring")
def no_owner(ctx):
    for connection in ctx.connections:
        if not (connection.owner or "").strip():
            yield (
                connection,
                _("Production connection %(slug)s has no owner.") % {"slug": connection.slug},
                _("Name who answers for it (an email address receives its alerts)."),
            )


@check("W007", "warning", "Secrets")
def expiring_soon(ctx):
    for credential in expiring(ctx):
        yield (
            credential.connection,
            _(
                "A credential of production connection %(slug)s ('%(credential)s') expires on "
                "%(date)s."
            )
            % {
                "slug": credential.connection.slug,
                "credential": credential.label or credential.kind,
                "date": f"{credential.expires_at:%Y-%m-%d}",
            },
            _(
                "Rotate it now: create the new secret at the partner and Replace it on the "
                "credential's page (docs/secrets.md)."
            ),
        )


@check("E004", "error", "Auth")
def oauth_over_http(ctx):
    from connectors.models import OAuthApp

    allowed = settings.HUB_OAUTH_ALLOW_HTTP and not settings.DEBUG
    apps = {c.oauth_app_id for c in oauth_connections(ctx) if c.oauth_app_id}
    for app in OAuthApp.objects.filter(pk__in=apps):
        urls = [app.authorization_url, app.token_url, app.revocation_url]
        if any(is_http(url) for url in urls if url):
            connection = next(c for c in ctx.connections if c.oauth_app_id == app.pk)
            yield (
                connection,
                _(
                    "OAuth app %(app)s of production connection %(slug)s has an endpoint over "
                    "plain http."
                )
                % {"app": app.name, "slug": connection.slug},
                _(
                    "Use the provider's https endpoints: codes, tokens and the client secret "
                    "cross them."
                ),
            )
    if allowed and apps:
        yield (
            None,
            _(
                "HUB_OAUTH_ALLOW_HTTP is on in production: OAuth redirects and token calls may "
                "use plain http."
            ),
            _("Unset HUB_OAUTH_ALLOW_HTTP (it is for a local provider in development)."),
        )


@check("W008", "warning", "Idempotency")
def create_without_key(ctx):
    for flow in ctx.flows:
        if flow.method.upper() == "POST" and not (flow.idempotency_key_template or "").strip():
            yield (
                flow.connection,
                _("Flow %(flow)s creates (POST) without an idempotency key.") % {"flow": flow.slug},
                _(
                    "Set its idempotency key (the default, flow:{flow}:{trigger}, is safe): a "
                    "retry then never creates twice."
                ),
            )


@check("W009", "warning", "GDPR")
def pii_without_purpose(ctx):
    from connectors.models import Connection
    from flows.models import MappingRule

    for flow in ctx.flows:
        # a workflow: each step's mapping, to the step's connection
        for slug, mapping in flow.step_sends():
            connection = Connection.objects.filter(slug=slug).first()
            if connection is None or (connection.purpose or "").strip():
                continue
            pii = list(
                MappingRule.objects.filter(mapping__slug=mapping, pii=True).values_list(
                    "target", flat=True
                )
            )
            if pii:
                yield (
                    connection,
                    _(
                        "Flow %(flow)s sends personal data (%(fields)s) to %(slug)s, which has "
                        "no purpose."
                    )
                    % {"flow": flow.slug, "fields": ", ".join(pii), "slug": slug},
                    _("Write the connection's purpose, or stop mapping these fields."),
                )
        if flow.mapping is None or (flow.connection.purpose or "").strip():
            continue
        pii = [rule.target for rule in flow.mapping.rules.all() if rule.pii]
        if pii:
            yield (
                flow.connection,
                _(
                    "Flow %(flow)s sends personal data (%(fields)s) to %(slug)s, which has no "
                    "purpose."
                )
                % {"flow": flow.slug, "fields": ", ".join(pii), "slug": flow.connection.slug},
                _("Write the connection's purpose, or stop mapping these fields."),
            )


@check("W010", "warning", "Flows")
def endpoint_without_work(ctx):
    from webhooks.handlers import registry

    with_flows = {flow.endpoint_id for flow in ctx.flows if flow.endpoint_id}
    # the flows app's own catch-all handler is not work: only a handler for this slug is
    handled = {slug for slug, _type, _func in registry.values() if slug != "*"}
    for endpoint in ctx.endpoints:
        if endpoint.pk not in with_flows and endpoint.slug not in handled:
            yield (
                endpoint.connection,
                _(
                    "Webhook endpoint %(endpoint)s has no flow and no handler: its events are "
                    "stored and marked unhandled, and nothing happens."
                )
                % {"endpoint": endpoint.slug},
                _(
                    "Add a flow triggered by it, register a handler for it "
                    "(HUB_HANDLER_MODULES), or disable it."
                ),
            )


@check("E005", "error", "Logs")
def development_settings(ctx):
    for name in debug_or_sandbox():
        yield (
            None,
            _("%(name)s is on.") % {"name": name},
            _(
                "DEBUG shows tracebacks and settings to visitors; the sandbox answers whoever "
                "holds its demo key. Neither belongs in production."
            ),
        )


@check("W011", "warning", "Logs")
def debug_logs(ctx):
    if settings.LOG_LEVEL.upper() == "DEBUG":
        yield (
            None,
            _("LOG_LEVEL is DEBUG."),
            _(
                "Use INFO in production: debug lines of the libraries below the hub may carry "
                "request details."
            ),
        )


@check("W012", "warning", "Monitoring")
def no_alert_channel(ctx):
    from monitoring.models import Channel

    channels = list(Channel.objects.filter(enabled=True).prefetch_related("connections"))

    def takes(channel, connection) -> bool:
        # a failing partner's incidents (the error-rate rule, critical), daily digests too
        wanted = {c.pk for c in channel.connections.all()}
        return (not channel.rules or "error_rate" in channel.rules) and (
            not wanted or connection.pk in wanted
        )

    for connection in ctx.connections:
        if not any(takes(channel, connection) for channel in channels):
            yield (
                connection,
                _("No alert channel takes the incidents of production connection %(slug)s.")
                % {"slug": connection.slug},
                _(
                    "Add a channel (Monitoring → Notification channels) routed to it, or to "
                    "every connection; otherwise its failures reach nobody."
                ),
            )
