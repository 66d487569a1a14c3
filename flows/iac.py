"""Integrations as code: connections, endpoints, mappings and flows as one YAML file.

``export_document()`` writes what the database holds, with every secret as a ``${ENV_NAME}``
reference (never a value). ``apply_document()`` creates or updates by slug, in one transaction:
every entry is validated (unknown keys, model validation, references between entries, unset
environment variables) and if anything is wrong nothing is written and each error names its
place (``flows[2].action.path: unknown field "idd"``). Objects absent from the file are left
alone. The format is documented in ``docs/integrations-as-code.md``.
"""

from __future__ import annotations

import hmac
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import yaml
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import transaction

from connectors.choices import AuditAction, CredentialKind
from connectors.engine.config_cache import bump_generation
from connectors.models import Connection, OAuthApp
from connectors.models.oauth import OAUTH_APP_SETTINGS
from connectors.secrets import SecretUnreadable, SecretValue, fingerprint
from connectors.services.credentials import (
    CredentialError,
    create_credential,
    current_credential,
    record_audit,
    replace_secret,
)
from flows.models import Flow, Mapping, MappingRule, TriggerKind
from webhooks.models import WebhookEndpoint

__all__ = ["ApplyReport", "InvalidDocument", "apply_document", "dump", "export_document", "load"]

VERSION = 1

CONNECTION_FIELDS = [
    "name",
    "service_kind",
    "environment",
    "base_url",
    "auth_method",
    "api_key_header_name",
    "api_key_query_param",
    "basic_username",
    "idempotency_header_name",
    "correlation_header_name",
    "health_path",
    "api_version",
    "requested_scopes",
    "token_refresh_margin_seconds",
    "connect_timeout",
    "read_timeout",
    "retry_max_attempts",
    "retry_backoff_base",
    "retry_backoff_cap",
    "retry_max_elapsed",
    "rate_limit_requests",
    "rate_limit_window_seconds",
    "circuit_failure_threshold",
    "circuit_cooldown_seconds",
    "purpose",
    "retention_days",
    "owner",
    "notes",
]
ENDPOINT_FIELDS = [
    "scheme",
    "unsigned",
    "scheme_options",
    "timestamp_tolerance_seconds",
    "ip_allowlist",
    "max_body_bytes",
    "event_id_source",
    "event_type_source",
    "accepted_content_types",
    "enabled",
]
RULE_FIELDS = ["source", "target", "transform", "args", "default", "required", "pii"]

OAUTH_APP_FIELDS = OAUTH_APP_SETTINGS  # the console's form lists the same (one place)
# file key (under "action") → Flow field
ACTION_FIELDS = {
    "method": "method",
    "path": "path",
    "match_key": "match_key",
    "lookup_path": "lookup_path",
    "lookup_results": "lookup_results",
    "record_id_field": "record_id_field",
    "update_method": "update_method",
    "update_path": "update_path",
    "idempotency_key": "idempotency_key_template",
    "required_scopes": "required_scopes",
}
TRIGGER_FIELDS = {"endpoint": "endpoint", "event_type": "event_type", "cron": "cron"}
REFERENCE = re.compile(r"^\$\{([A-Z_][A-Z0-9_]*)\}$")


class InvalidDocument(Exception):
    """The file has errors; ``errors`` lists them, each with its place."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("\n".join(errors))


# -- export ----------------------------------------------------------------------------------


def env_name(connection_slug: str, kind: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", f"HUB_{connection_slug}_{kind}".upper()).strip("_")


def oauth_secret_env_name(app_name: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", f"HUB_OAUTH_{app_name}_CLIENT_SECRET".upper()).strip("_")


def _oauth_app_entry(app: OAuthApp) -> dict:
    entry = {"name": app.name, **{name: getattr(app, name) for name in OAUTH_APP_FIELDS}}
    if app.client_secret_fingerprint:
        entry["client_secret"] = "${" + oauth_secret_env_name(app.name) + "}"
    return entry


def _connection_entry(connection: Connection) -> dict:
    entry = {"slug": connection.slug}
    entry.update({name: getattr(connection, name) for name in CONNECTION_FIELDS})
    if connection.oauth_app_id:
        entry["oauth_app"] = connection.oauth_app.name
    secrets = {}
    for kind in CredentialKind.values:
        if kind in (CredentialKind.ACCESS_TOKEN, CredentialKind.REFRESH_TOKEN):
            continue  # obtained by connecting the account, not configured
        if current_credential(connection, kind) is not None:
            secrets[kind] = "${" + env_name(connection.slug, kind) + "}"
    if secrets:
        entry["secrets"] = secrets
    return entry


def export_document() -> dict:
    """The whole configuration as a document (secrets as ``${ENV_NAME}`` references)."""
    mappings = []
    for mapping in Mapping.objects.prefetch_related("rules").order_by("slug"):
        mappings.append(
            {
                "slug": mapping.slug,
                "name": mapping.name,
                "description": mapping.description,
                "rules": [
                    {name: getattr(rule, name) for name in RULE_FIELDS}
                    for rule in mapping.rules.all()
                ],
            }
        )
    flows = []
    for flow in Flow.objects.select_related("endpoint", "connection", "mapping").order_by("slug"):
        trigger: dict = {"type": flow.trigger}
        if flow.trigger == TriggerKind.WEBHOOK:
            trigger.update(endpoint=flow.endpoint.slug, event_type=flow.event_type)
        elif flow.trigger == TriggerKind.SCHEDULE:
            trigger["cron"] = flow.cron
        action = {"connection": flow.connection.slug, "mapping": flow.mapping.slug}
        action.update({key: getattr(flow, name) for key, name in ACTION_FIELDS.items()})
        flows.append(
            {
                "slug": flow.slug,
                "name": flow.name,
                "description": flow.description,
                "enabled": flow.enabled,
                "trigger": trigger,
                "condition": flow.condition,
                "action": action,
            }
        )
    return {
        "version": VERSION,
        "oauth_apps": [_oauth_app_entry(app) for app in OAuthApp.objects.order_by("name")],
        "connections": [
            _connection_entry(c)
            for c in Connection.objects.select_related("oauth_app").order_by("slug")
        ],
        "endpoints": [
            {"slug": e.slug, "connection": e.connection.slug}
            | {name: getattr(e, name) for name in ENDPOINT_FIELDS}
            for e in WebhookEndpoint.objects.select_related("connection").order_by("slug")
        ],
        "mappings": mappings,
        "flows": flows,
        **{section.name: section.export() for section in EXTRA_SECTIONS},
    }


def dump(document: dict) -> str:
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)


def load(text: str) -> dict:
    """Parse YAML with ``safe_load`` (no Python objects); errors say where."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise InvalidDocument([f"{where}not valid YAML ({getattr(exc, 'problem', exc)})"]) from None
    if not isinstance(document, dict):
        raise InvalidDocument(["the file must be a mapping with connections, endpoints, …"])
    return document


# -- apply -----------------------------------------------------------------------------------


@dataclass
class ApplyReport:
    changes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def note(self, kind: str, slug: str, fields: list[str] | None = None) -> None:
        if fields is None:
            self.changes.append(f"+ {kind} {slug} (created)")
        elif fields:
            self.changes.append(f"~ {kind} {slug}: {', '.join(fields)} changed")
        else:
            self.changes.append(f"= {kind} {slug} (unchanged)")


class _Rollback(Exception):
    pass


def entries(document: dict, section: str, report: ApplyReport) -> list[tuple[str, dict]]:
    items = document.get(section) or []
    if not isinstance(items, list):
        report.errors.append(f"{section}: expected a list")
        return []
    seen: set[str] = set()
    entries = []
    for index, item in enumerate(items):
        where = f"{section}[{index}]"
        if not isinstance(item, dict):
            report.errors.append(f"{where}: expected a mapping of field: value")
            continue
        slug = item.get("slug")
        if not isinstance(slug, str) or not slug:
            report.errors.append(f"{where}.slug: required")
            continue
        if slug in seen:
            report.errors.append(f'{where}.slug: "{slug}" appears twice')
            continue
        seen.add(slug)
        entries.append((where, item))
    return entries


def unknown_keys(where: str, item: dict, allowed: set[str], report: ApplyReport) -> bool:
    unknown = [key for key in item if key not in allowed]
    for key in unknown:
        report.errors.append(f'{where}: unknown field "{key}"')
    return bool(unknown)


def _validation_errors(where: str, exc: ValidationError, rename: dict | None = None) -> list[str]:
    rename = rename or {}
    if not hasattr(exc, "error_dict"):
        return [f"{where}: {message}" for message in exc.messages]
    out = []
    for name, errors in exc.message_dict.items():
        place = where if name == "__all__" else f"{where}.{rename.get(name, name)}"
        out += [f"{place}: {message}" for message in errors]
    return out


def assign(instance, values: dict) -> list[str]:
    """Set attributes; returns the names whose value changed."""
    changed = []
    for name, value in values.items():
        try:
            current = getattr(instance, name)
        except ObjectDoesNotExist:  # a required relation not set yet (a new object)
            current = None
        if current != value:
            setattr(instance, name, value)
            changed.append(name)
    return changed


def save_validated(instance, where, report, *, rename=None, exclude=None) -> bool:
    try:
        instance.full_clean(exclude=exclude)
    except ValidationError as exc:
        report.errors += _validation_errors(where, exc, rename)
        return False
    instance.save()
    return True


def _secret_value(
    where: str, kind: str, reference, report: ApplyReport, *, place: str = ""
) -> str | None:
    place = place or f"{where}.secrets.{kind}"
    if kind not in CredentialKind.values:
        report.errors.append(f"{place}: unknown secret kind (known: {', '.join(CredentialKind)})")
        return None
    match = REFERENCE.match(reference) if isinstance(reference, str) else None
    if not match:
        report.errors.append(
            f"{place}: write secrets as ${{ENV_NAME}} references, never as values in the file"
        )
        return None
    value = os.environ.get(match.group(1))
    if not value:
        report.errors.append(f"{place}: environment variable {match.group(1)} is not set")
        return None
    return value


def _apply_secrets(connection, where, secrets, report, actor) -> list[str]:
    if not isinstance(secrets, dict):
        report.errors.append(f"{where}.secrets: expected kind: ${{ENV_NAME}} pairs")
        return []
    changed = []
    for kind, reference in secrets.items():
        value = _secret_value(where, kind, reference, report)
        if value is None:
            continue
        current = current_credential(connection, kind) if connection.pk else None
        try:
            if current is None:
                create_credential(connection, kind, value, actor=actor, label="from file")
                changed.append(f"secret {kind}")
                continue
            try:
                same = hmac.compare_digest(current.value.reveal().encode(), value.encode())
            except (SecretUnreadable, AttributeError):
                same = False
            if not same:
                replace_secret(current, value, actor=actor)
                changed.append(f"secret {kind}")
        except CredentialError as exc:
            report.errors.append(f"{where}.secrets.{kind}: {exc}")
    return changed


def _apply_oauth_apps(document, report, actor) -> None:
    """OAuth apps, keyed by their name (connections name them); the client secret as a
    ``${ENV_NAME}`` reference, like every secret."""
    items = document.get("oauth_apps") or []
    if not isinstance(items, list):
        report.errors.append("oauth_apps: expected a list")
        return
    known = {app.name: app for app in OAuthApp.objects.all()}
    allowed = {"name", "client_secret", *OAUTH_APP_FIELDS}
    for index, item in enumerate(items):
        where = f"oauth_apps[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
            report.errors.append(f"{where}.name: required")
            continue
        if unknown_keys(where, item, allowed, report):
            continue
        app = known.get(item["name"])
        created = app is None
        if created:
            app = OAuthApp(name=item["name"])
        changed = assign(app, {name: item[name] for name in OAUTH_APP_FIELDS if name in item})
        if "client_secret" in item:
            value = _secret_value(
                where,
                CredentialKind.OAUTH_CLIENT_SECRET,
                item["client_secret"],
                report,
                place=f"{where}.client_secret",
            )
            if value is None:
                continue
            if fingerprint(value) != app.client_secret_fingerprint:
                app.client_secret = SecretValue(value)
                app.client_secret_fingerprint = fingerprint(value)
                changed.append("client_secret")
        if (created or changed) and not save_validated(app, where, report):
            continue
        if "client_secret" in changed:
            record_audit(
                AuditAction.CREDENTIAL_CREATED if created else AuditAction.CREDENTIAL_REPLACED,
                actor=actor,
                detail=f"OAuth app {app.name!r}: client secret {app.client_secret_fingerprint} "
                "(integrations apply)",
            )
        known[app.name] = app
        report.note("oauth app", app.name, None if created else changed)


def _apply_connections(document, report, actor) -> dict[str, Connection]:
    known = {c.slug: c for c in Connection.objects.all()}
    allowed = {"slug", "oauth_app", "secrets", *CONNECTION_FIELDS}
    for where, item in entries(document, "connections", report):
        if unknown_keys(where, item, allowed, report):
            continue
        slug = item["slug"]
        connection = known.get(slug)
        created = connection is None
        if created:
            connection = Connection(slug=slug)
        values = {name: item[name] for name in CONNECTION_FIELDS if name in item}
        if "oauth_app" in item:
            app = (
                OAuthApp.objects.filter(name=item["oauth_app"]).first()
                if item["oauth_app"]
                else None
            )
            if item["oauth_app"] and app is None:
                name = item["oauth_app"]
                report.errors.append(f'{where}.oauth_app: no OAuth app named "{name}"')
                continue
            values["oauth_app"] = app
        changed = assign(connection, values)
        if (created or changed) and not save_validated(connection, where, report):
            continue
        changed += _apply_secrets(connection, where, item.get("secrets") or {}, report, actor)
        known[slug] = connection
        report.note("connection", slug, None if created else changed)
    return known


def _apply_endpoints(document, report, connections) -> dict[str, WebhookEndpoint]:
    known = {e.slug: e for e in WebhookEndpoint.objects.all()}
    allowed = {"slug", "connection", *ENDPOINT_FIELDS}
    for where, item in entries(document, "endpoints", report):
        if unknown_keys(where, item, allowed, report):
            continue
        connection = connections.get(item.get("connection"))
        if connection is None or connection.pk is None:
            report.errors.append(
                f'{where}.connection: unknown connection "{item.get("connection")}"'
            )
            continue
        endpoint = known.get(item["slug"])
        created = endpoint is None
        if created:
            endpoint = WebhookEndpoint(slug=item["slug"])
        values = {name: item[name] for name in ENDPOINT_FIELDS if name in item}
        values["connection"] = connection
        changed = assign(endpoint, values)
        if (created or changed) and not save_validated(endpoint, where, report):
            continue
        known[item["slug"]] = endpoint
        report.note("endpoint", item["slug"], None if created else changed)
    return known


def _rule_values(where: str, index: int, rule, report) -> dict | None:
    place = f"{where}.rules[{index}]"
    if not isinstance(rule, dict):
        report.errors.append(f"{place}: expected a mapping of field: value")
        return None
    if unknown_keys(place, rule, set(RULE_FIELDS), report):
        return None
    values = {"transform": "copy", "args": {}, "default": None, "required": False, "pii": False}
    values.update(rule)
    values["position"] = index + 1
    instance = MappingRule(**{k: v for k, v in values.items() if k != "mapping"})
    try:
        instance.full_clean(exclude=["mapping"])
    except ValidationError as exc:
        report.errors += _validation_errors(place, exc)
        return None
    return {name: getattr(instance, name) for name in ["position", *RULE_FIELDS]}


def _apply_mappings(document, report) -> dict[str, Mapping]:
    known = {m.slug: m for m in Mapping.objects.prefetch_related("rules")}
    allowed = {"slug", "name", "description", "rules"}
    for where, item in entries(document, "mappings", report):
        if unknown_keys(where, item, allowed, report):
            continue
        rules = item.get("rules")
        if not isinstance(rules, list) or not rules:
            report.errors.append(f"{where}.rules: a mapping needs at least one rule")
            continue
        wanted = [_rule_values(where, i, rule, report) for i, rule in enumerate(rules)]
        if any(values is None for values in wanted):
            continue
        mapping = known.get(item["slug"])
        created = mapping is None
        if created:
            mapping = Mapping(slug=item["slug"])
        changed = assign(
            mapping,
            {"name": item.get("name") or item["slug"], "description": item.get("description", "")},
        )
        if (created or changed) and not save_validated(mapping, where, report):
            continue
        current = [
            {name: getattr(rule, name) for name in ["position", *RULE_FIELDS]}
            for rule in mapping.rules.all()
        ]
        if current != wanted:
            mapping.rules.all().delete()
            MappingRule.objects.bulk_create(MappingRule(mapping=mapping, **v) for v in wanted)
            bump_generation()  # bulk_create sends no signal: drop cached rules everywhere
            changed.append("rules")
        known[item["slug"]] = mapping
        report.note("mapping", item["slug"], None if created else changed)
    return known


FLOW_RENAME = {
    "endpoint": "trigger.endpoint",
    "event_type": "trigger.event_type",
    "cron": "trigger.cron",
    "trigger": "trigger.type",
    "connection": "action.connection",
    "mapping": "action.mapping",
    **{name: f"action.{key}" for key, name in ACTION_FIELDS.items()},
}


def _apply_flows(document, report, connections, endpoints, mappings) -> None:
    known = {f.slug: f for f in Flow.objects.all()}
    allowed = {"slug", "name", "description", "enabled", "trigger", "condition", "action"}
    for where, item in entries(document, "flows", report):
        if unknown_keys(where, item, allowed, report):
            continue
        trigger, action = item.get("trigger"), item.get("action")
        if not isinstance(trigger, dict) or not isinstance(action, dict):
            report.errors.append(f"{where}: needs a trigger and an action (mappings of fields)")
            continue
        bad = unknown_keys(f"{where}.trigger", trigger, {"type", *TRIGGER_FIELDS}, report)
        bad |= unknown_keys(
            f"{where}.action", action, {"connection", "mapping", *ACTION_FIELDS}, report
        )
        if bad:
            continue
        values = {
            "name": item.get("name") or item["slug"],
            "description": item.get("description", ""),
            "enabled": item.get("enabled", True),
            "condition": item.get("condition") or [],
            "trigger": trigger.get("type", ""),
            "event_type": trigger.get("event_type", "*"),
            "cron": trigger.get("cron", ""),
            "endpoint": None,
        }
        if "endpoint" in trigger:
            endpoint = endpoints.get(trigger["endpoint"])
            if endpoint is None or endpoint.pk is None:
                report.errors.append(
                    f'{where}.trigger.endpoint: unknown endpoint "{trigger["endpoint"]}"'
                )
                continue
            values["endpoint"] = endpoint
        connection = connections.get(action.get("connection"))
        if connection is None or connection.pk is None:
            report.errors.append(
                f'{where}.action.connection: unknown connection "{action.get("connection")}"'
            )
            continue
        mapping = mappings.get(action.get("mapping"))
        if mapping is None or mapping.pk is None:
            report.errors.append(
                f'{where}.action.mapping: unknown mapping "{action.get("mapping")}"'
            )
            continue
        values.update(connection=connection, mapping=mapping)
        defaults = {f.name: f.get_default() for f in Flow._meta.fields}
        for key, name in ACTION_FIELDS.items():
            values[name] = action.get(key, defaults[name])
        flow = known.get(item["slug"])
        created = flow is None
        if created:
            flow = Flow(slug=item["slug"])
        changed = assign(flow, values)
        if (created or changed) and not save_validated(flow, where, report, rename=FLOW_RENAME):
            continue
        known[item["slug"]] = flow
        report.note("flow", item["slug"], None if created else changed)
    return known


@dataclass
class Section:
    """A section another app adds to the file (the syncs app: ``syncs``): ``export()`` gives
    its entries; ``apply(document, report, known)`` validates and writes them, where ``known``
    maps "connections", "endpoints", "mappings" and "flows" to {slug: object}."""

    name: str
    export: Callable[[], list]
    apply: Callable[[dict, ApplyReport, dict], None]


EXTRA_SECTIONS: list[Section] = []


def apply_document(document: dict, *, dry_run: bool = False, actor=None) -> ApplyReport:
    """Create or update everything in ``document``; all or nothing. Raises ``InvalidDocument``
    (nothing written) when any entry is wrong."""
    report = ApplyReport()
    sections = {"version", "oauth_apps", "connections", "endpoints", "mappings", "flows"}
    unknown = set(document) - sections - {section.name for section in EXTRA_SECTIONS}
    for key in sorted(unknown):
        report.errors.append(f'unknown section "{key}"')
    if document.get("version", VERSION) != VERSION:
        report.errors.append(f"version: this hub reads version {VERSION}")
    try:
        with transaction.atomic():
            _apply_oauth_apps(document, report, actor)
            connections = _apply_connections(document, report, actor)
            endpoints = _apply_endpoints(document, report, connections)
            mappings = _apply_mappings(document, report)
            flows = _apply_flows(document, report, connections, endpoints, mappings)
            known = {
                "connections": connections,
                "endpoints": endpoints,
                "mappings": mappings,
                "flows": flows,
            }
            for section in EXTRA_SECTIONS:
                section.apply(document, report, known)
            if report.errors or dry_run:
                raise _Rollback
    except _Rollback:
        pass
    if report.errors:
        raise InvalidDocument(report.errors)
    return report
