"""Integrations as code: connections, endpoints, mappings and flows as one YAML file.

``export_document()`` writes what the database holds, with every secret as a ``${ENV_NAME}``
reference (never a value). ``apply_document()`` creates or updates by slug, in one transaction:
every entry is validated (unknown keys, model validation, references between entries, unset
environment variables) and if anything is wrong nothing is written and each error names its
place (``flows[2].action.path: unknown field "idd"``). Objects absent from the file are left
alone; a setting absent from an entry takes its default. The format is documented in
``docs/integrations-as-code.md``.

Each section of the file is declared once, as a :class:`Section` in :data:`SECTIONS`: its model,
the model's list of settings (the same list the console's form shows), where a setting sits in
an entry when not at the top under its own name, and which other section a reference names.
One loop applies and exports every section; a section's hooks handle what is particular to it
(a connection's secrets, a mapping's rules, an OAuth app's client secret).
"""

from __future__ import annotations

import hmac
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import models, transaction

from connectors.choices import AuditAction, CredentialKind
from connectors.engine.config_cache import bump_generation
from connectors.models import Connection, OAuthApp
from connectors.models.connection import CONNECTION_SETTINGS
from connectors.models.oauth import OAUTH_APP_SETTINGS
from connectors.registry import Registry
from connectors.secrets import SecretUnreadable, SecretValue, fingerprint
from connectors.services.credentials import (
    CredentialError,
    create_credential,
    current_credential,
    record_audit,
    replace_secret,
)
from flows.models import (
    FLOW_SETTINGS,
    MAPPING_SETTINGS,
    RULE_SETTINGS,
    Flow,
    Mapping,
    MappingRule,
    TriggerKind,
)
from webhooks.models import WebhookEndpoint
from webhooks.models.endpoint import ENDPOINT_SETTINGS

__all__ = [
    "SECTIONS",
    "ApplyReport",
    "InvalidDocument",
    "Section",
    "apply_document",
    "dump",
    "export_document",
    "load",
    "name_from_slug",
    "register",
    "settings_of",
]

VERSION = 1
REFERENCE = re.compile(r"^\$\{([A-Z_][A-Z0-9_]*)\}$")


def settings_of(groups) -> list[str]:
    """The field names of a model's settings list (``[(title, [names…]), …]``), in order."""
    return [name for _title, names in groups for name in names]


class InvalidDocument(Exception):
    """The file has errors; ``errors`` lists them, each with its place."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("\n".join(errors))


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


@dataclass
class Step:
    """One entry being applied, handed to a section's hooks."""

    where: str  # its place in the file: "connections[0]"
    item: dict
    obj: Any
    created: bool
    changed: list[str]
    report: ApplyReport
    actor: Any
    known: dict  # section name → {key: object}, for the sections applied so far
    scratch: dict = field(default_factory=dict)


@dataclass
class Section:
    """A section of the file (``connections``, ``flows``, ``syncs``…), declared once.

    ``settings`` are the model's settings, the same list its console form shows; each sits in an
    entry at the top under its own name unless ``places`` says otherwise (``"action.path"``).
    ``references`` names, for a foreign key, the section whose key it holds. Hooks:
    ``before(step)`` runs after the settings are assigned and before the object is validated and
    saved (return False to skip the entry, its errors reported); ``after(step)`` runs once it is
    saved and appends what else it changed to ``step.changed``; ``export_extra(obj, entry)`` adds
    the keys the hooks read; ``tidy(obj, entry)`` drops settings an entry does not use.
    """

    name: str
    noun: str
    model: type[models.Model]
    settings: list[str]
    key: str = "slug"
    places: dict[str, str] = field(default_factory=dict)
    references: dict[str, str] = field(default_factory=dict)
    extra: tuple[str, ...] = ()
    defaults: dict[str, Callable[[dict], Any]] = field(default_factory=dict)
    exclude: tuple[str, ...] = ()
    before: Callable[[Step], bool] | None = None
    after: Callable[[Step], None] | None = None
    export_extra: Callable[[Any, dict], None] | None = None
    tidy: Callable[[Any, dict], None] | None = None

    @property
    def fields(self) -> list[str]:
        return [name for name in self.settings if name != self.key]

    def place(self, name: str) -> str:
        return self.places.get(name, name)

    def layout(self) -> tuple[set[str], dict[str, set[str]]]:
        """The keys an entry may hold at the top, and in each nested group."""
        top, groups = {self.key, *self.extra}, {}
        for name in self.fields:
            head, _, rest = self.place(name).partition(".")
            top.add(head)
            if rest:
                groups.setdefault(head, set()).add(rest)
        return top, groups

    # -- export ----------------------------------------------------------------------------

    def export(self) -> list[dict]:
        rows = self.model.objects.select_related(*self.references).order_by(self.key)
        return [self.entry(obj) for obj in rows]

    def entry(self, obj) -> dict:
        entry: dict = {self.key: getattr(obj, self.key)}
        for name in self.fields:
            value = getattr(obj, name)
            if name in self.references:
                value = getattr(value, SECTIONS[self.references[name]].key) if value else None
            _put(entry, self.place(name), value)
        if self.tidy:
            self.tidy(obj, entry)
        if self.export_extra:
            self.export_extra(obj, entry)
        return entry

    # -- apply -----------------------------------------------------------------------------

    def apply(self, document: dict, report: ApplyReport, known: dict, actor) -> None:
        existing = known[self.name] = {getattr(o, self.key): o for o in self.model.objects.all()}
        top, groups = self.layout()
        rename = {name: self.place(name) for name in self.fields if self.place(name) != name}
        for where, item in entries(document, self.name, report, key=self.key):
            if unknown_keys(where, item, top, report):
                continue
            bad = False
            for group, keys in groups.items():
                value = item.get(group)
                if value is not None and not isinstance(value, dict):
                    report.errors.append(f"{where}.{group}: expected a mapping of field: value")
                    bad = True
                elif value and unknown_keys(f"{where}.{group}", value, keys, report):
                    bad = True
            if bad:
                continue
            values = self._values(where, item, report, known)
            if values is None:
                continue
            obj = existing.get(item[self.key])
            created = obj is None
            if created:
                obj = self.model(**{self.key: item[self.key]})
            step = Step(where, item, obj, created, assign(obj, values), report, actor, known)
            if self.before and not self.before(step):
                continue
            if (created or step.changed) and not save_validated(
                obj, where, report, rename=rename, exclude=list(self.exclude) or None
            ):
                continue
            if self.after:
                self.after(step)
            existing[item[self.key]] = obj
            report.note(self.noun, item[self.key], None if created else step.changed)

    def _values(self, where, item, report, known) -> dict | None:
        """The entry's settings as model values: absent ones take their default, references
        are resolved to the objects they name; None when a reference is unknown."""
        values, ok = {}, True
        for name in self.fields:
            place = self.place(name)
            found, value = _get(item, place)
            if name in self.defaults and (not found or value in (None, "")):
                value = self.defaults[name](item)
            elif not found:
                value = self.model._meta.get_field(name).get_default()
            if name in self.references:
                value, resolved = self._resolve(name, value, known)
                if not resolved:
                    noun = SECTIONS[self.references[name]].noun
                    report.errors.append(
                        f'{where}.{place}: unknown {noun} "{_get(item, place)[1]}"'
                    )
                    ok = False
            values[name] = value
        return values if ok else None

    def _resolve(self, name: str, value, known) -> tuple[Any, bool]:
        if value in (None, ""):
            return None, True
        target = known.get(self.references[name], {}).get(value)
        if target is None or target.pk is None:
            return None, False
        return target, True


def _get(item: dict, place: str) -> tuple[bool, Any]:
    head, _, rest = place.partition(".")
    if rest:
        group = item.get(head) or {}
        return (rest in group, group.get(rest))
    return (head in item, item.get(head))


def _put(entry: dict, place: str, value) -> None:
    head, _, rest = place.partition(".")
    if rest:
        entry.setdefault(head, {})[rest] = value
    else:
        entry[head] = value


class _Rollback(Exception):
    pass


def entries(
    document: dict, section: str, report: ApplyReport, *, key: str = "slug"
) -> list[tuple[str, dict]]:
    items = document.get(section) or []
    if not isinstance(items, list):
        report.errors.append(f"{section}: expected a list")
        return []
    seen: set[str] = set()
    found = []
    for index, item in enumerate(items):
        where = f"{section}[{index}]"
        if not isinstance(item, dict):
            report.errors.append(f"{where}: expected a mapping of field: value")
            continue
        value = item.get(key)
        if not isinstance(value, str) or not value:
            report.errors.append(f"{where}.{key}: required")
            continue
        if value in seen:
            report.errors.append(f'{where}.{key}: "{value}" appears twice')
            continue
        seen.add(value)
        found.append((where, item))
    return found


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
        for message in errors:
            # a message that names its own place inside the field (steps[1].path: …)
            if name != "__all__" and message.startswith(f"{rename.get(name, name)}["):
                out.append(f"{where}.{message}")
            else:
                out.append(f"{place}: {message}")
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


# -- secrets ---------------------------------------------------------------------------------


def env_name(connection_slug: str, kind: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", f"HUB_{connection_slug}_{kind}".upper()).strip("_")


def oauth_secret_env_name(app_name: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", f"HUB_OAUTH_{app_name}_CLIENT_SECRET".upper()).strip("_")


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


# -- oauth apps: the client secret, write-only -----------------------------------------------


def _oauth_client_secret(step: Step) -> bool:
    if "client_secret" not in step.item:
        return True
    place = f"{step.where}.client_secret"
    kind = CredentialKind.OAUTH_CLIENT_SECRET
    value = _secret_value(step.where, kind, step.item["client_secret"], step.report, place=place)
    if value is None:
        return False
    app = step.obj
    if fingerprint(value) != app.client_secret_fingerprint:
        app.client_secret = SecretValue(value)
        app.client_secret_fingerprint = fingerprint(value)
        step.changed.append("client_secret")
    return True


def _oauth_audit(step: Step) -> None:
    if "client_secret" in step.changed:
        app = step.obj
        record_audit(
            AuditAction.CREDENTIAL_CREATED if step.created else AuditAction.CREDENTIAL_REPLACED,
            actor=step.actor,
            detail=f"OAuth app {app.name!r}: client secret {app.client_secret_fingerprint} "
            "(integrations apply)",
        )


def _export_oauth_secret(app: OAuthApp, entry: dict) -> None:
    if app.client_secret_fingerprint:
        entry["client_secret"] = "${" + oauth_secret_env_name(app.name) + "}"


# -- connections: their secrets as references ------------------------------------------------


def _apply_secrets(step: Step) -> None:
    secrets = step.item.get("secrets") or {}
    where, report, connection = step.where, step.report, step.obj
    if not isinstance(secrets, dict):
        report.errors.append(f"{where}.secrets: expected kind: ${{ENV_NAME}} pairs")
        return
    for kind, reference in secrets.items():
        value = _secret_value(where, kind, reference, report)
        if value is None:
            continue
        current = current_credential(connection, kind)
        try:
            if current is None:
                create_credential(connection, kind, value, actor=step.actor, label="from file")
                step.changed.append(f"secret {kind}")
                continue
            try:
                same = hmac.compare_digest(current.value.reveal().encode(), value.encode())
            except (SecretUnreadable, AttributeError):
                same = False
            if not same:
                replace_secret(current, value, actor=step.actor)
                step.changed.append(f"secret {kind}")
        except CredentialError as exc:
            report.errors.append(f"{where}.secrets.{kind}: {exc}")


def _export_secrets(connection: Connection, entry: dict) -> None:
    secrets = {}
    for kind in CredentialKind.values:
        if kind in (CredentialKind.ACCESS_TOKEN, CredentialKind.REFRESH_TOKEN):
            continue  # obtained by connecting the account, not configured
        if current_credential(connection, kind) is not None:
            secrets[kind] = "${" + env_name(connection.slug, kind) + "}"
    if secrets:
        entry["secrets"] = secrets


# -- mappings: their rules -------------------------------------------------------------------

RULE_DEFAULTS = {"transform": "copy", "args": {}, "default": None, "required": False, "pii": False}


def _rule_values(where: str, index: int, rule, report) -> dict | None:
    place = f"{where}.rules[{index}]"
    if not isinstance(rule, dict):
        report.errors.append(f"{place}: expected a mapping of field: value")
        return None
    if unknown_keys(place, rule, set(RULE_SETTINGS), report):
        return None
    values = {**RULE_DEFAULTS, **rule, "position": index + 1}
    instance = MappingRule(**values)
    try:
        instance.full_clean(exclude=["mapping"])
    except ValidationError as exc:
        report.errors += _validation_errors(place, exc)
        return None
    return {name: getattr(instance, name) for name in ["position", *RULE_SETTINGS]}


def _check_rules(step: Step) -> bool:
    rules = step.item.get("rules")
    if not isinstance(rules, list) or not rules:
        step.report.errors.append(f"{step.where}.rules: a mapping needs at least one rule")
        return False
    wanted = [_rule_values(step.where, i, rule, step.report) for i, rule in enumerate(rules)]
    if any(values is None for values in wanted):
        return False
    step.scratch["rules"] = wanted
    return True


def _replace_rules(step: Step) -> None:
    mapping, wanted = step.obj, step.scratch["rules"]
    current = [
        {name: getattr(rule, name) for name in ["position", *RULE_SETTINGS]}
        for rule in mapping.rules.all()
    ]
    if current != wanted:
        mapping.rules.all().delete()
        MappingRule.objects.bulk_create(MappingRule(mapping=mapping, **v) for v in wanted)
        bump_generation()  # bulk_create sends no signal: drop cached rules everywhere
        step.changed.append("rules")


def _export_rules(mapping: Mapping, entry: dict) -> None:
    entry["rules"] = [
        {name: getattr(rule, name) for name in RULE_SETTINGS} for rule in mapping.rules.all()
    ]


# -- flows: the trigger's settings that its kind uses ----------------------------------------


def _tidy_trigger(flow: Flow, entry: dict) -> None:
    trigger = entry["trigger"]
    if flow.trigger != TriggerKind.WEBHOOK:
        del trigger["endpoint"]
        del trigger["event_type"]
    if flow.trigger != TriggerKind.SCHEDULE:
        del trigger["cron"]
    if not flow.is_workflow:
        for key in ("steps", "correlation_key", "cancel"):
            entry.pop(key, None)
        return
    # a workflow: its steps say what they do; the one action's settings are left at their
    # defaults, so the entry keeps only the connection its steps use by default
    action = entry.get("action") or {}
    for name in FLOW_ACTION:
        key = FLOW_PLACES.get(name, f"action.{name}").partition(".")[2]
        unused = getattr(flow, name) in (None, "", Flow._meta.get_field(name).get_default())
        if name != "connection" and key in action and unused:
            del action[key]
    cancel = entry.get("cancel") or {}
    for key in [k for k, v in cancel.items() if not v]:
        del cancel[key]
    if not cancel:
        entry.pop("cancel", None)
    if not flow.correlation_key:
        entry.pop("correlation_key", None)


def name_from_slug(item: dict) -> str:
    """The default name of an entry that gives none: its slug."""
    return item["slug"]


FLOW_GROUPS = dict(FLOW_SETTINGS)
FLOW_ACTION = [*FLOW_GROUPS["Action"], *FLOW_GROUPS["Upsert without duplicates"]]
# a workflow's: its steps at the top, what cancels its runs under "cancel"
FLOW_PLACES = {
    **{name: f"action.{name}" for name in FLOW_ACTION},
    "idempotency_key_template": "action.idempotency_key",
    "steps": "steps",
    "correlation_key": "correlation_key",
    "cancel_event_type": "cancel.event_type",
    "cancel_key_path": "cancel.key_path",
}

SECTIONS: Registry = Registry("section of integrations as code")
"""Every section of the file, in the order they are applied (a section may name objects of
the sections before it). Other apps add theirs in ``AppConfig.ready`` (syncs: ``syncs``)."""


def register(section: Section) -> Section:
    """Add ``section`` to the file, after those registered before it."""
    return SECTIONS.add(section.name, section)


register(
    Section(
        name="oauth_apps",
        noun="oauth app",
        model=OAuthApp,
        key="name",
        settings=["name", *OAUTH_APP_SETTINGS],
        extra=("client_secret",),
        before=_oauth_client_secret,
        after=_oauth_audit,
        export_extra=_export_oauth_secret,
    )
)
register(
    Section(
        name="connections",
        noun="connection",
        model=Connection,
        settings=settings_of(CONNECTION_SETTINGS),
        references={"oauth_app": "oauth_apps"},
        extra=("secrets",),
        after=_apply_secrets,
        export_extra=_export_secrets,
    )
)
register(
    Section(
        name="endpoints",
        noun="endpoint",
        model=WebhookEndpoint,
        settings=settings_of(ENDPOINT_SETTINGS),
        references={"connection": "connections"},
    )
)
register(
    Section(
        name="mappings",
        noun="mapping",
        model=Mapping,
        settings=settings_of(MAPPING_SETTINGS),
        extra=("rules",),
        defaults={"name": name_from_slug},
        before=_check_rules,
        after=_replace_rules,
        export_extra=_export_rules,
    )
)
register(
    Section(
        name="flows",
        noun="flow",
        model=Flow,
        settings=settings_of(FLOW_SETTINGS),
        places={
            "trigger": "trigger.type",
            "endpoint": "trigger.endpoint",
            "event_type": "trigger.event_type",
            "cron": "trigger.cron",
            **FLOW_PLACES,
        },
        references={"endpoint": "endpoints", "connection": "connections", "mapping": "mappings"},
        defaults={"name": name_from_slug, "condition": lambda item: []},
        tidy=_tidy_trigger,
    )
)


# -- the document ----------------------------------------------------------------------------


def export_document() -> dict:
    """The whole configuration as a document (secrets as ``${ENV_NAME}`` references)."""
    return {"version": VERSION, **{name: section.export() for name, section in SECTIONS.items()}}


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


def apply_document(document: dict, *, dry_run: bool = False, actor=None) -> ApplyReport:
    """Create or update everything in ``document``; all or nothing. Raises ``InvalidDocument``
    (nothing written) when any entry is wrong."""
    report = ApplyReport()
    for key in sorted(set(document) - {"version", *SECTIONS}):
        report.errors.append(f'unknown section "{key}"')
    if document.get("version", VERSION) != VERSION:
        report.errors.append(f"version: this hub reads version {VERSION}")
    try:
        with transaction.atomic():
            known: dict = {}
            for section in SECTIONS.values():
                section.apply(document, report, known, actor)
            if report.errors or dry_run:
                raise _Rollback
    except _Rollback:
        pass
    if report.errors:
        raise InvalidDocument(report.errors)
    return report
