"""The deliverables an agency hands over, generated from the live configuration: the flow
diagram (Mermaid), the field mapping sheet, the secrets inventory and policy, a troubleshooting
guide per connection, and the processing register (GDPR art. 30).

Each is Markdown, sorted and without a generation time, so that the same configuration gives
the same text and ``manage.py deliverables --check`` can tell when committed files drift.
The troubleshooting guide's live state sits between ``<!-- live -->`` and ``<!-- /live -->``:
it changes by the minute and ``--check`` ignores it.
"""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from connectors.choices import AuditAction, CredentialState
from connectors.models import AuditEntry, Connection, Credential
from connectors.roles import ADMINS

__all__ = ["DELIVERABLES", "render_all", "to_html", "without_live"]

LIVE = re.compile(r"<!-- live -->.*?<!-- /live -->", re.S)


def without_live(text: str) -> str:
    return LIVE.sub("<!-- live -->", text)


def _id(prefix: str, slug: str) -> str:
    return prefix + re.sub(r"[^A-Za-z0-9_]", "_", slug)


def _flows():
    from flows.models import Flow

    return list(
        Flow.objects.select_related("connection", "endpoint", "mapping")
        .prefetch_related("mapping__rules")
        .order_by("slug")
    )


def _q(text) -> str:
    """Text for a quoted Mermaid label: a double quote would end it (Mermaid's entity)."""
    return str(text).replace('"', "#quot;")


def _mapped(mapping) -> str:
    """The fields a mapping sends, PII marked ("" for none)."""
    return ", ".join(f"{r.target}{' (PII)' if r.pii else ''}" for r in mapping.rules.all())


def _fields(flow) -> str:
    if flow.mapping is None:
        return "no mapping"
    return _mapped(flow.mapping) or "no field"


def _step_context(flows) -> tuple[dict, dict]:
    """The connections and mappings the workflows' steps name, by slug (two queries)."""
    from connectors.models import Connection
    from flows.models import Mapping

    named = {
        step.get("connection") for f in flows for step in f.steps or [] if step.get("connection")
    }
    mappings = {step.get("mapping") for f in flows for step in f.steps or [] if step.get("mapping")}
    return (
        {c.slug: c for c in Connection.objects.filter(slug__in=named)},
        {m.slug: m for m in Mapping.objects.filter(slug__in=mappings).prefetch_related("rules")},
    )


def _steps_to_partners(flow, context):
    """(position, step, its connection or None, its request, its fields) for each step that
    calls a partner (fetch, upsert, call), in order."""
    from flows.steps import STEP_KINDS

    connections, mappings = context
    for position, step in enumerate(flow.steps, 1):
        kind = STEP_KINDS.get(step.get("kind"))
        if kind is None or not kind.uses_connection:
            continue
        slug = step.get("connection")
        connection = connections.get(slug) if slug else flow.connection
        request = f"{step.get('method', kind.default_method)} {step.get('path', '')}".strip()
        mapping = mappings.get(step.get("mapping"))
        yield position, step, connection, request, _mapped(mapping) if mapping else ""


def _step_edges(flow, node: str, context) -> list[str]:
    """One edge per step that calls a partner, numbered in the workflow's order, to the step's
    own connection; the steps that call none (delay, condition, python) are in the table."""
    lines = []
    for position, step, connection, request, fields in _steps_to_partners(flow, context):
        if connection is None:
            continue  # named but gone: the gate's checks say so
        target = _id("c_", connection.slug)
        lines.append(f'    {target}["{_q(connection.name)} ({connection.environment})"]')
        label = f"{position}. {step.get('name')}: {request}" + (f": {fields}" if fields else "")
        lines.append(f'    {node} -->|"{_q(label)}"| {target}')
    return lines


def _step_cells(flow, context) -> tuple[str, str]:
    """The table's "calls" and "sends" cells of a workflow: every step in order."""
    calls, sends = [], []
    partners = {p: (c, r, f) for p, _s, c, r, f in _steps_to_partners(flow, context)}
    for position, step in enumerate(flow.steps, 1):
        name = f"{position}. {step.get('name')} ({step.get('kind')})"
        if position in partners:
            connection, request, fields = partners[position]
            slug = connection.slug if connection else step.get("connection")
            calls.append(f"{name} {slug}: {request}")
            if fields:
                sends.append(f"{step.get('name')}: {fields}")
        else:
            calls.append(name)
    return "<br>".join(calls), "<br>".join(sends) or "no mapping"


def flow_diagram() -> str:
    """Who calls whom, when, with which fields, and what happens on error."""
    flows = _flows()
    context = _step_context(flows)
    lines = ["# Flow diagram", "", "```mermaid", "flowchart LR"]
    for flow in flows:
        target = _id("c_", flow.connection.slug)
        lines.append(f'    {target}["{_q(flow.connection.name)} ({flow.connection.environment})"]')
        node = _id("f_", flow.slug)
        lines.append(f'    {node}(["flow {_q(flow.name)}"])')
        if flow.trigger == "webhook" and flow.endpoint_id:
            source = _id("e_", flow.endpoint.slug)
            lines.append(f'    {source}[/"POST /webhooks/{flow.endpoint.slug}/"/]')
            lines.append(f'    {source} -->|"{_q(flow.event_type or "any event")}"| {node}')
        elif flow.trigger == "schedule":
            source = _id("s_", flow.slug)
            lines.append(f'    {source}{{{{"cron {_q(flow.cron)}"}}}}')
            lines.append(f"    {source} --> {node}")
        else:
            source = _id("m_", flow.slug)
            lines.append(f'    {source}(("manual / API"))')
            lines.append(f"    {source} --> {node}")
        if flow.is_workflow:
            lines += _step_edges(flow, node, context)
        else:
            lines.append(
                f'    {node} -->|"{flow.method} {_q(flow.path)}: {_q(_fields(flow))}"| {target}'
            )
    lines += ["```", ""]
    retries = ", ".join(f"{s} s" for s in settings.HUB_WEBHOOK_RETRY_SCHEDULE)
    lines += [
        "| flow | when | calls | sends | on error |",
        "| --- | --- | --- | --- | --- |",
    ]
    for flow in flows:
        when = {
            "webhook": f"webhook {flow.event_type or 'any'} on "
            f"/webhooks/{flow.endpoint.slug if flow.endpoint_id else '?'}/",
            "schedule": f"cron {flow.cron}",
        }.get(flow.trigger, "by hand or the REST API")
        calls, sends = f"{flow.connection.slug}: {flow.method} {flow.path}", _fields(flow)
        if flow.is_workflow:
            calls, sends = _step_cells(flow, context)
        lines.append(
            f"| {flow.name} | {when} | {calls} | "
            f"{sends} | transient errors retried (calls: up to "
            f"{flow.connection.retry_max_attempts} attempts; events: after {retries}), then "
            "dead-lettered and an incident is opened |"
        )
    return "\n".join(lines) + "\n"


def _mapping_users() -> dict[str, list[str]]:
    """Which flows send each mapping's fields, and to which connection: a one-action flow's
    mapping, and every workflow step's (by mapping slug)."""
    flows = _flows()
    connections, _mappings = _step_context(flows)
    users: dict[str, list[str]] = {}
    for flow in flows:
        if not flow.is_workflow:
            if flow.mapping is not None:
                users.setdefault(flow.mapping.slug, []).append(
                    f"flow `{flow.slug}` to {flow.connection.slug}"
                )
            continue
        for position, step in enumerate(flow.steps, 1):
            if not step.get("mapping"):
                continue
            slug = step.get("connection")
            connection = connections.get(slug) if slug else flow.connection
            target = connection.slug if connection else slug
            users.setdefault(step["mapping"], []).append(
                f"flow `{flow.slug}`, step {position}. {step.get('name')} to {target}"
            )
    return users


def mapping_sheet() -> str:
    from flows.admin import SHEET_HEADER, sheet_rows
    from flows.models import Mapping

    users = _mapping_users()
    lines = ["# Field mapping sheet", ""]
    for mapping in Mapping.objects.prefetch_related("rules").order_by("slug"):
        lines += [f"## {mapping.name} (`{mapping.slug}`)", ""]
        used = users.get(mapping.slug)
        lines += ["Sent by: " + "; ".join(used) if used else "Sent by no flow.", ""]
        lines.append("| " + " | ".join(SHEET_HEADER) + " |")
        lines.append("| " + " | ".join("---" for _ in SHEET_HEADER) + " |")
        lines += ["| " + " | ".join(row) + " |" for row in sheet_rows(mapping)]
        lines.append("")
    return "\n".join(lines) + "\n"


def secrets_inventory() -> str:
    from django.contrib.auth.models import Group

    admins = Group.objects.filter(name=ADMINS).first()
    people = sorted(admins.user_set.values_list("username", flat=True)) if admins else []
    rotated = (
        AuditEntry.objects.filter(action=AuditAction.FERNET_KEYS_ROTATED)
        .order_by("-at")
        .values_list("at", flat=True)
        .first()
    )
    lines = [
        "# Secrets inventory and policy",
        "",
        "**Where they are stored**: every partner secret is a credential, encrypted with Fernet "
        "in the database; the keys are in the environment (`FERNET_KEYS`), never in the "
        "database or the code. The hub's own secrets (`SECRET_KEY`, `FERNET_KEYS`, SSO client "
        "secrets) are environment variables only.",
        "",
        f"**Who can reach them**: integration admins ({', '.join(people) or 'nobody yet'}) "
        "create, replace and revoke credentials; nobody can read a value back (the console "
        "shows a fingerprint). Operators and auditors never reach a credential page. Every "
        "change is in the audit trail.",
        "",
        f"**Fernet keys**: {len(settings.FERNET_KEYS)} configured; last re-encryption: "
        f"{rotated:%Y-%m-%d} (manage.py rotate_fernet_keys)."
        if rotated
        else f"**Fernet keys**: {len(settings.FERNET_KEYS)} configured; never rotated.",
        "",
        "**If a leak is suspected**: revoke the key at the partner, *Replace* the credential "
        "with a new one (or *Revoke* it), check the audit trail and the call log for its use, "
        "and rotate `FERNET_KEYS` if the database or its backups may have leaked "
        "(docs/secrets.md).",
        "",
        "| connection | kind | label | fingerprint | state | created | expires | rotate by |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in Credential.objects.select_related("connection").order_by(
        "connection__slug", "kind", "created_at", "pk"
    ):
        if c.state == CredentialState.REVOKED:
            continue
        lines.append(
            f"| {c.connection.slug} | {c.get_kind_display()} | {c.label or '—'} | "
            f"{c.fingerprint} | {c.get_state_display()} | {c.created_at:%Y-%m-%d} | "
            f"{f'{c.expires_at:%Y-%m-%d}' if c.expires_at else '—'} | "
            f"{f'{c.rotate_by:%Y-%m-%d}' if c.rotate_by else '—'} |"
        )
    return "\n".join(lines) + "\n"


def _live_state(connection) -> list[str]:
    from monitoring.choices import ACTIVE_STATES
    from monitoring.models import EventRollup, Incident
    from monitoring.rules.quota import latest_quotas
    from webhooks.models import WebhookEvent

    now = timezone.now()
    out = []
    token = (
        Credential.objects.filter(connection=connection, state=CredentialState.ACTIVE)
        .order_by("-updated_at")
        .first()
    )
    if token is not None:
        minutes = int((now - token.updated_at).total_seconds() // 60)
        out.append(f"- Credential {token.get_kind_display()} last changed {minutes} min ago.")
    quota = latest_quotas(now).get(connection.pk)
    if quota and quota[1]:
        out.append(f"- Quota: {round(100 * quota[0] / quota[1])} % left.")
    waiting = WebhookEvent.objects.filter(
        endpoint__connection=connection, status__in=("failed", "dead")
    ).count()
    out.append(f"- Events waiting for a person: {waiting}.")
    received = EventRollup.objects.filter(
        endpoint__connection=connection, start__gte=now - timedelta(hours=24)
    ).aggregate(n=Sum("received"))["n"]
    out.append(f"- Events received in the last 24 h: {received or 0}.")
    open_incidents = Incident.objects.filter(connection=connection, state__in=ACTIVE_STATES)
    for incident in open_incidents[:5]:
        out.append(f"- Open incident: {incident.summary}.")
    return out


def troubleshooting() -> str:
    lines = ["# Troubleshooting guide", ""]
    for connection in Connection.objects.order_by("slug"):
        host = urlsplit(connection.base_url).netloc
        lines += [
            f"## {connection.name} (`{connection.slug}`)",
            "",
            "What to check, in order:",
            "",
            f"1. **Token**: *Test connection* on its page calls "
            f"{host}{connection.health_path or ''} and says what a 401 or 403 means; a "
            "connection in *reauth required* needs its account reconnected.",
            "2. **Quota**: its calls' rate-limit headers (the API calls list, the metrics' "
            f'`hub_quota_remaining_ratio{{connection="{connection.slug}"}}`); the hub\'s own '
            f"limit is {connection.rate_limit_requests or 'none'} per "
            f"{connection.rate_limit_window_seconds} s.",
            "3. **Webhook**: its endpoints' refusal counters and last reason; the partner's "
            "delivery log.",
            "4. **Logs**: the API calls of a correlation id (the event's page links them).",
            "",
            "How to relaunch without duplicates: *Retry* a failed or dead event (or *Retry all* "
            "from its incident). Every create carries an idempotency key derived from the "
            "event, and upserts look the record up first, so a retry never creates twice. A "
            "*Replay* of a processed event is safe for the same reason.",
            "",
            "Live state:",
            "<!-- live -->",
            *_live_state(connection),
            "<!-- /live -->",
            "",
        ]
    return "\n".join(lines) + "\n"


def processing_register() -> str:
    from flows.models import MappingRule

    lines = [
        "# Processing register (GDPR art. 30)",
        "",
        "| connection | purpose | personal data sent | recipient | retention | security |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    # what workflows' steps send, by connection
    from flows.models import Flow

    by_steps: dict[str, set[str]] = {}
    for flow in Flow.objects.select_related("connection"):
        for slug, mapping in flow.step_sends():
            by_steps.setdefault(slug, set()).add(mapping)
    for connection in Connection.objects.order_by("slug"):
        pii = sorted(
            set(
                MappingRule.objects.filter(
                    pii=True, mapping__flows__connection=connection
                ).values_list("target", flat=True)
            )
            | set(
                MappingRule.objects.filter(
                    pii=True, mapping__slug__in=by_steps.get(connection.slug, ())
                ).values_list("target", flat=True)
            )
        )
        https = urlsplit(connection.base_url).scheme == "https"
        retention = f"{connection.retention_days} days" if connection.retention_days else "NOT SET"
        if connection.payload_retention_days:
            retention += f" (event bodies {connection.payload_retention_days} days)"
        lines.append(
            f"| {connection.slug} | {(connection.purpose or 'NOT SET').strip()} | "
            f"{', '.join(pii) or 'none mapped'} | {connection.name} "
            f"({urlsplit(connection.base_url).netloc}) | "
            f"{retention} | "
            f"{'TLS' if https else 'NO TLS'}; credentials encrypted (Fernet); roles; audit trail; "
            "only mapped fields leave the hub; erasure on request (GDPR desk) |"
        )
    return "\n".join(lines) + "\n"


DELIVERABLES = {
    "flow-diagram.md": flow_diagram,
    "mapping-sheet.md": mapping_sheet,
    "secrets.md": secrets_inventory,
    "troubleshooting.md": troubleshooting,
    "processing-register.md": processing_register,
}


def render_all() -> dict[str, str]:
    return {name: render() for name, render in DELIVERABLES.items()}


def to_html(text: str):
    """A deliverable for the console: Markdown (tables included) with any raw HTML escaped, as
    names and purposes typed in the configuration may hold some, and Mermaid blocks left for
    the vendored Mermaid to draw."""
    from django.utils.safestring import mark_safe
    from markdown_it import MarkdownIt
    from markdown_it.common.utils import escapeHtml

    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    fence = md.renderer.rules.get("fence")

    def mermaid_fence(renderer, tokens, idx, options, env):
        token = tokens[idx]
        if token.info.strip() == "mermaid":
            return f'<pre class="mermaid">{escapeHtml(token.content)}</pre>\n'
        return fence(tokens, idx, options, env)

    md.add_render_rule("fence", mermaid_fence)
    return mark_safe(md.render(text))  # noqa: S308 - markdown-it escapes raw HTML (html=False)
