"""The gate's checks, one small function each (ids are stable: docs/governance.md lists them).

Each yields ``(connection or None, message, hint)``. Messages name the object and never a
secret: the test-key check reads a key's first characters in memory and says only which
format it matched.
"""

from __future__ import annotations

from django.conf import settings

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
                f"Production connection {connection.slug} calls {connection.base_url} over "
                "plain http.",
                "Use the partner's https URL: over http the key and the data travel in clear.",
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
                    f"Production connection {connection.slug} uses what looks like a "
                    f"{match} (credential '{credential.label or credential.kind}').",
                    "Replace it with the live key from the partner's dashboard, or set the "
                    "connection's environment to sandbox.",
                )


@check("E003", "error", "Auth")
def unsigned_endpoint(ctx):
    for endpoint in ctx.endpoints:
        if endpoint.unsigned:
            yield (
                endpoint.connection,
                f"Webhook endpoint {endpoint.slug} of production connection "
                f"{endpoint.connection.slug} accepts unsigned deliveries.",
                "Choose the partner's verification scheme and add its signing secret; anyone "
                "who knows the URL can post to an unsigned endpoint.",
            )


@check("W001", "warning", "Auth")
def wide_tolerance(ctx):
    for endpoint in ctx.endpoints:
        if endpoint.timestamp_tolerance_seconds > MAX_TOLERANCE:
            yield (
                endpoint.connection,
                f"Webhook endpoint {endpoint.slug} accepts timestamps "
                f"{endpoint.timestamp_tolerance_seconds} s old.",
                f"Keep the tolerance at {MAX_TOLERANCE} s or less: a longer window lets a "
                "captured delivery be replayed later.",
            )


@check("W002", "warning", "Errors")
def timeouts(ctx):
    for connection in ctx.connections:
        for name in ("connect_timeout", "read_timeout"):
            value = getattr(connection, name)
            if not value or value > MAX_TIMEOUT:
                yield (
                    connection,
                    f"Production connection {connection.slug} has a {name.replace('_', ' ')} "
                    f"of {value or 'none'} s.",
                    f"Set it between 1 and {MAX_TIMEOUT:.0f} s: a hanging partner then holds a "
                    "worker for seconds, not minutes.",
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
                f"Production connection {connection.slug} was granted broad scopes: "
                f"{', '.join(sorted(flagged))}.",
                "Ask only for the scopes its flows need (least privilege); a leaked token "
                "then opens less.",
            )
        extra = granted - needed.get(connection.pk, set())
        if needed.get(connection.pk) and extra:
            yield (
                connection,
                f"Production connection {connection.slug} holds scopes no flow needs: "
                f"{', '.join(sorted(extra))}.",
                "Remove them from the requested scopes and reconnect the account.",
            )


@check("W004", "warning", "GDPR")
def no_purpose(ctx):
    for connection in ctx.connections:
        if not (connection.purpose or "").strip():
            yield (
                connection,
                f"Production connection {connection.slug} has no purpose.",
                "Write why personal data goes to this partner (GDPR art. 5 and 30): the "
                "processing register is built from it.",
            )


@check("W005", "warning", "GDPR")
def no_retention(ctx):
    for connection in ctx.connections:
        if not connection.retention_days:
            yield (
                connection,
                f"Production connection {connection.slug} has no retention.",
                "Set how many days its events, calls and runs are kept; they are then purged.",
            )


@check("W006", "warning", "Monitoring")
def no_owner(ctx):
    for connection in ctx.connections:
        if not (connection.owner or "").strip():
            yield (
                connection,
                f"Production connection {connection.slug} has no owner.",
                "Name who answers for it (an email address receives its alerts).",
            )


@check("W007", "warning", "Secrets")
def expiring_soon(ctx):
    for credential in expiring(ctx):
        yield (
            credential.connection,
            f"A credential of production connection {credential.connection.slug} "
            f"('{credential.label or credential.kind}') expires on "
            f"{credential.expires_at:%Y-%m-%d}.",
            "Rotate it now: create the new secret at the partner and Replace it on the "
            "credential's page (docs/secrets.md).",
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
                f"OAuth app {app.name} of production connection {connection.slug} has an "
                "endpoint over plain http.",
                "Use the provider's https endpoints: codes, tokens and the client secret "
                "cross them.",
            )
    if allowed and apps:
        yield (
            None,
            "HUB_OAUTH_ALLOW_HTTP is on in production: OAuth redirects and token calls may "
            "use plain http.",
            "Unset HUB_OAUTH_ALLOW_HTTP (it is for a local provider in development).",
        )


@check("W008", "warning", "Idempotency")
def create_without_key(ctx):
    for flow in ctx.flows:
        if flow.method.upper() == "POST" and not (flow.idempotency_key_template or "").strip():
            yield (
                flow.connection,
                f"Flow {flow.slug} creates (POST) without an idempotency key.",
                "Set its idempotency key (the default, flow:{flow}:{trigger}, is safe): a retry "
                "then never creates twice.",
            )


@check("W009", "warning", "GDPR")
def pii_without_purpose(ctx):
    for flow in ctx.flows:
        if flow.mapping is None or (flow.connection.purpose or "").strip():
            continue
        pii = [rule.target for rule in flow.mapping.rules.all() if rule.pii]
        if pii:
            yield (
                flow.connection,
                f"Flow {flow.slug} sends personal data ({', '.join(pii)}) to "
                f"{flow.connection.slug}, which has no purpose.",
                "Write the connection's purpose, or stop mapping these fields.",
            )


@check("W010", "warning", "Flows")
def endpoint_without_work(ctx):
    from webhooks.handlers import registry

    with_flows = {flow.endpoint_id for flow in ctx.flows if flow.endpoint_id}
    # the flows app's own catch-all handler is not work: only a handler for this slug is
    handled = {slug for slug, _, _ in registry.values() if slug != "*"}
    for endpoint in ctx.endpoints:
        if endpoint.pk not in with_flows and endpoint.slug not in handled:
            yield (
                endpoint.connection,
                f"Webhook endpoint {endpoint.slug} has no flow and no handler: its events are "
                "stored and marked processed, and nothing happens.",
                "Add a flow triggered by it, register a handler for it (HUB_HANDLER_MODULES), "
                "or disable it.",
            )


@check("E005", "error", "Logs")
def development_settings(ctx):
    for name in debug_or_sandbox():
        yield (
            None,
            f"{name} is on.",
            "DEBUG shows tracebacks and settings to visitors; the sandbox answers whoever holds "
            "its demo key. Neither belongs in production.",
        )


@check("W011", "warning", "Logs")
def debug_logs(ctx):
    if settings.LOG_LEVEL.upper() == "DEBUG":
        yield (
            None,
            "LOG_LEVEL is DEBUG.",
            "Use INFO in production: debug lines of the libraries below the hub may carry "
            "request details.",
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
                f"No alert channel takes the incidents of production connection {connection.slug}.",
                "Add a channel (Monitoring → Channels) routed to it, or to every connection; "
                "otherwise its failures reach nobody.",
            )
