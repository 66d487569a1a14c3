"""The GDPR desk: find one person across everything the hub stores, export it, erase it.

A person is named by one identifier: an email address (any case), a phone number (any
formatting: ``06 12 34 56 78`` is ``+33612345678``) or a partner's external id (exact). Each
*place* (:data:`PLACES`) is a table and the columns of it that can hold personal data: stored
webhook bodies and headers, mirrored records, flow and sync runs, idempotency records' stored
responses, the call log's paths and errors, and the sandbox. The database narrows the rows
(a case-insensitive substring of each column); Python decides, value by value.

Erasure redacts, it does not delete: in a JSON document, the object that holds the identifier
is the person's (``data.object.customer``): its values become ``"[erased]"``, nested ones too,
except its ids, types, statuses and timestamps; anywhere else, the identifier itself is
replaced in text. Rows keep their ids, hashes and statuses, so counts, deduplication (an
event's id and body hash) and the retries of other events work as before. An erased event is
never retried or replayed (it would send ``[erased]`` to a partner). The receipt is an entry
of the audit trail: who, when, the kind of identifier and the rows per place; never the value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from django.apps import apps
from django.db import transaction
from django.db.models import F, Func, Q, TextField
from django.utils import timezone
from django.utils.translation import gettext as _

__all__ = [
    "ERASED",
    "ERASURE_EVENT",
    "KINDS",
    "PLACES",
    "Finding",
    "Subject",
    "erase",
    "export_document",
    "find",
]

ERASED = "[erased]"
# the hub's own event after an erasure, one per partner record of the person: flows of an
# endpoint that name this event type exactly run on it (DELETE /contacts/{id} at the CRM)
ERASURE_EVENT = "hub.erasure_requested"
KINDS = {"email": "Email address", "phone": "Phone number", "external_id": "External id"}
# what a tombstone keeps in the person's object: what links and counts, not who
KEPT_KEYS = {"id", "object", "type", "status", "created", "updated", "livemode"}
PHONE_RUN = re.compile(r"\+?\d[\d .()/-]{5,}\d")


def _kept(key: str) -> bool:
    key = key.lower()
    return key in KEPT_KEYS or key.endswith(("_id", "_at"))


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value).lstrip("0")


@dataclass(frozen=True)
class Subject:
    """The person looked for: a kind of identifier and its value."""

    kind: str
    value: str

    @classmethod
    def parse(cls, kind: str, value: str) -> Subject:
        """The subject, or a ``ValueError`` whose message says what to type."""
        value = (value or "").strip()
        if kind not in KINDS:
            raise ValueError(
                _("unknown kind %(kind)s (known: %(known)s)")
                % {"kind": f"{kind!r}", "known": ", ".join(KINDS)}
            )
        if kind == "email" and not re.fullmatch(r"[^@\s]+@[^@\s]+", value):
            raise ValueError(_("type one email address, such as ada@example.com"))
        if kind == "phone" and len(_digits(value)) < 8:
            raise ValueError(_("type a phone number of at least 8 digits, in any format"))
        if kind == "external_id" and len(value) < 3:
            raise ValueError(_("type the partner's id of the person (3 characters at least)"))
        return cls(kind, value.lower() if kind == "email" else value)

    # -- matching ---------------------------------------------------------------------------
    @property
    def needles(self) -> list[str]:
        """Substrings the database looks for (case-insensitive) to narrow the rows."""
        if self.kind == "phone":
            # formats split the number anywhere but rarely inside its last two digits
            return [_digits(self.value)[-2:]]
        return sorted({self.value, quote(self.value, safe="")})

    def _pattern(self) -> re.Pattern:
        alternatives = "|".join(re.escape(n) for n in sorted(self.needles, key=len, reverse=True))
        return re.compile(rf"(?<![\w.+%-])(?:{alternatives})(?![\w-]|\.\w)", re.IGNORECASE)

    def _same_phone(self, text: str) -> bool:
        mine, theirs = _digits(self.value), _digits(text)
        short, long = sorted((mine, theirs), key=len)
        return len(short) >= 8 and long.endswith(short)

    def matches(self, value: Any) -> bool:
        """Is this value (a JSON scalar) the identifier itself?"""
        if isinstance(value, bool) or value is None:
            return False
        text = str(value).strip()
        if self.kind == "phone":
            return bool(PHONE_RUN.fullmatch(text)) and self._same_phone(text)
        if self.kind == "email":
            return text.lower() in self.needles
        return text in self.needles

    def occurs(self, text: str) -> bool:
        """Is the identifier somewhere in this text?"""
        if self.kind == "phone":
            return any(self._same_phone(m.group()) for m in PHONE_RUN.finditer(text))
        return bool(self._pattern().search(text))

    def redact(self, text: str) -> str:
        """The text with the identifier replaced by ``[erased]``."""
        if self.kind == "phone":
            return PHONE_RUN.sub(
                lambda m: ERASED if self._same_phone(m.group()) else m.group(), text
            )
        return self._pattern().sub(ERASED, text)


# -- JSON documents -------------------------------------------------------------------------
def _erase_all(value: Any, subject: Subject, key: str = "") -> Any:
    """The person's object: every value erased but its ids, types, statuses and timestamps."""
    if isinstance(value, dict):
        return {k: _erase_all(v, subject, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_erase_all(v, subject, key) for v in value]
    if value is None or isinstance(value, bool):
        return value
    if key and _kept(key) and not subject.matches(value):
        return value
    return ERASED


def _walk(value: Any, subject: Subject, path: str, found: list) -> Any:
    """The document redacted; ``found`` gets (path, what was there) for each person's object
    and each text that names the person."""
    if isinstance(value, dict):
        if any(not isinstance(v, dict | list) and subject.matches(v) for v in value.values()):
            found.append((path or "(whole document)", value))
            return _erase_all(value, subject)
        return {k: _walk(v, subject, f"{path}.{k}" if path else k, found) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, subject, f"{path}[{i}]", found) for i, v in enumerate(value)]
    if isinstance(value, str) and subject.occurs(value):
        found.append((path, value))
        return subject.redact(value)
    if isinstance(value, int | float) and not isinstance(value, bool) and subject.matches(value):
        found.append((path, value))
        return ERASED
    return value


def _scan(value: Any, subject: Subject, kind: str) -> tuple[Any, list]:
    """(redacted value, findings) of one column's value, by the column's kind."""
    found: list = []
    if value is None:
        return value, found
    if kind == "json":
        return _walk(value, subject, "", found), found
    if kind == "bytes":
        raw = bytes(value)
        text = raw.decode("utf-8", errors="surrogateescape")
        try:
            document = json.loads(text)
        except ValueError:
            if not subject.occurs(text):
                return value, found
            found.append(
                ("(raw body)", text.encode(errors="surrogateescape").decode(errors="replace"))
            )
            return subject.redact(text).encode("utf-8", errors="surrogateescape"), found
        redacted = _walk(document, subject, "", found)
        if not found:
            return value, found
        return json.dumps(redacted, ensure_ascii=False, separators=(",", ":")).encode(), found
    text = str(value)
    if subject.occurs(text):
        found.append(("", text))
        return subject.redact(text), found
    return value, found


# -- places ---------------------------------------------------------------------------------
class BytesAsText(Func):
    """A binary column read as text, for a substring test in the database."""

    template = "CAST(%(expressions)s AS TEXT)"
    output_field = TextField()

    def as_postgresql(self, compiler, connection, **extra):
        # bytea as text: ASCII as itself, other bytes as \\ooo escapes
        return self.as_sql(compiler, connection, template="encode(%(expressions)s, 'escape')")


@dataclass(frozen=True)
class Place:
    """A table that can hold personal data, and its columns (name → json, bytes or text).

    ``keys`` are columns searched but never rewritten (an id a unique constraint or a link
    needs): a row whose key is the person has every column erased as the person's object.
    ``describe`` gives what the export and the console show of a row besides the data;
    ``on_erase`` what else changes on an erased row.
    """

    key: str
    label: str
    model: str
    columns: dict[str, str]
    describe: Callable[[Any], dict]
    keys: tuple[str, ...] = ()
    app: str = ""
    on_erase: Callable[[Any], dict] = field(default=lambda row: {})

    def model_class(self):
        return apps.get_model(self.model)

    def installed(self) -> bool:
        return apps.is_installed(self.app or self.model.split(".")[0])

    def candidates(self, subject: Subject):
        model = self.model_class()
        queryset, wanted = model.objects.all(), Q()
        for name in (*self.columns, *self.keys):
            kind = self.columns.get(name, "text")
            target = name
            if kind == "bytes":
                target = f"gdpr_{name}"
                queryset = queryset.annotate(**{target: BytesAsText(F(name))})
            for needle in subject.needles:
                wanted |= Q(**{f"{target}__icontains": needle})
        return queryset.filter(wanted).order_by("pk")


def _event(row) -> dict:
    return {
        "id": row.pk,
        "endpoint": row.endpoint.slug,
        "event_id": row.event_id,
        "event_type": row.event_type,
        "received_at": row.received_at,
        "status": row.status,
    }


def _erased_event(row) -> dict:
    """An erased event keeps its status once processed; one still to be processed or waiting
    for a person is resolved, as it can no longer run (it would send "[erased]" on)."""
    from webhooks.services.processing import RETRYABLE

    changes = {"redaction": "erasure", "redacted_at": timezone.now()}
    if row.status in RETRYABLE:
        changes |= {
            "status": "resolved",
            "next_attempt_at": None,
            "resolution_note": "Resolved by the GDPR desk: the person's data in it was erased, "
            "so it is no longer processed.",
        }
    return changes


def _erased_run(row) -> dict:
    """A workflow run still to go on is cancelled: its next steps would send "[erased]"."""
    from flows.services.workflow import PENDING

    if row.status not in PENDING:
        return {}
    return {
        "status": "cancelled",
        "cancelled_by": "the GDPR desk (the person's data in it was erased)",
        "finished_at": timezone.now(),
        "lease_until": None,
    }


PLACES: list[Place] = [
    Place(
        "webhook_events",
        "Webhook events (stored bodies and headers)",
        "webhooks.WebhookEvent",
        {"body": "bytes", "headers": "json", "last_error": "text", "resolution_note": "text"},
        _event,
        on_erase=lambda row: _erased_event(row),
    ),
    Place(
        "event_attempts",
        "Event processing attempts (errors)",
        "webhooks.EventAttempt",
        {"error": "text"},
        lambda r: {"id": r.pk, "event": r.event_id, "number": r.number, "started_at": r.started_at},
    ),
    Place(
        "mirrored_records",
        "Mirrored records (syncs)",
        "syncs.MirrorRecord",
        {"data": "json"},
        lambda r: {
            "id": r.pk,
            "connection": r.connection.slug,
            "object_type": r.object_type,
            "external_id": r.external_id,
            "last_synced_at": r.last_synced_at,
        },
        keys=("external_id",),
    ),
    Place(
        "flow_runs",
        "Flow runs (errors, references, a workflow's trigger data)",
        "flows.FlowRun",
        {
            "error": "text",
            "record_id": "text",
            "trigger_ref": "text",
            "trigger_data": "json",
            "cancel_key": "text",
        },
        lambda r: {"id": r.pk, "flow": r.flow.slug, "started_at": r.started_at, "status": r.status},
        on_erase=lambda row: _erased_run(row),
    ),
    Place(
        "flow_cancellations",
        "Workflow cancellations kept for out-of-order events (their correlation value)",
        "flows.FlowCancellation",
        {"key": "text", "cancelled_by": "text"},
        lambda r: {"id": r.pk, "flow": r.flow.slug, "received_at": r.received_at},
    ),
    Place(
        "flow_run_steps",
        "Workflow steps (what each sent and read)",
        "flows.FlowRunStep",
        {"sent": "json", "result": "json", "error": "text"},
        lambda r: {"id": r.pk, "run": r.run_id, "step": r.name, "status": r.status},
    ),
    Place(
        "sync_runs",
        "Sync runs (record errors)",
        "syncs.SyncRun",
        {"errors": "json"},
        lambda r: {"id": r.pk, "job": r.job.slug, "started_at": r.started_at},
    ),
    Place(
        "idempotency_records",
        "Idempotency records (stored responses)",
        "connectors.IdempotencyRecord",
        {"response_body": "bytes", "response_headers": "json"},
        lambda r: {"id": r.pk, "scope": r.scope, "created_at": r.created_at, "state": r.state},
        keys=("key",),
    ),
    Place(
        "api_calls",
        "API calls (paths and errors)",
        "connectors.ApiCall",
        {"path": "text", "error_message": "text"},
        lambda r: {
            "id": r.pk,
            "connection": r.connection.slug,
            "method": r.method,
            "created_at": r.created_at,
            "status_code": r.status_code,
        },
        keys=("idempotency_key",),
    ),
    Place(
        "sandbox_contacts",
        "Sandbox CRM contacts",
        "sandbox.SandboxContact",
        {"data": "json", "email": "text"},
        lambda r: {"id": f"c_{r.pk}", "created_at": r.created_at},
    ),
    Place(
        "sandbox_records",
        "Sandbox partners' records (bookings, emails, invoices, tickets…)",
        "sandbox.SandboxRecord",
        {"data": "json"},
        lambda r: {"id": r.ref, "service": r.service, "created_at": r.created_at},
    ),
    Place(
        "sandbox_requests",
        "Sandbox CRM request log",
        "sandbox.SandboxRequest",
        {"body": "json", "path": "text"},
        lambda r: {"id": r.pk, "method": r.method, "received_at": r.received_at},
    ),
    Place(
        "sandbox_replays",
        "Sandbox CRM idempotency answers",
        "sandbox.SandboxIdempotencyKey",
        {"body": "json"},
        lambda r: {"id": r.pk},
    ),
]
RELATED = {"webhook_events": ["endpoint"], "mirrored_records": ["connection"]}
RELATED |= {"flow_runs": ["flow"], "sync_runs": ["job"], "api_calls": ["connection"]}
RELATED |= {"flow_cancellations": ["flow"]}


@dataclass
class Finding:
    """One row of a place that holds the person: what it is, what was found, the redaction."""

    place: Place
    row: Any
    found: list = field(default_factory=list)
    redacted: dict = field(default_factory=dict)

    def as_json(self) -> dict:
        return {
            **self.place.describe(self.row),
            "found": [
                {"where": f"{column}{'.' + path if path else ''}", "value": value}
                for column, path, value in self.found
            ],
        }


def _inspect(place: Place, row, subject: Subject) -> Finding | None:
    finding = Finding(place, row)
    whole = any(subject.matches(getattr(row, key)) for key in place.keys)
    for column, kind in place.columns.items():
        value = getattr(row, column)
        if whole and kind == "json" and isinstance(value, dict):
            redacted, found = _erase_all(value, subject), [("", value)]
        else:
            redacted, found = _scan(value, subject, kind)
        if found:
            finding.found += [(column, path, v) for path, v in found]
            finding.redacted[column] = redacted
    return finding if finding.found else None


def find(subject: Subject) -> dict[str, list[Finding]]:
    """Every row that holds the person, by place (each place in :data:`PLACES`, installed)."""
    results = {}
    for place in PLACES:
        if not place.installed():
            continue
        rows = place.candidates(subject).select_related(*RELATED.get(place.key, []))
        results[place.key] = [
            f for f in (_inspect(place, row, subject) for row in rows.iterator(500)) if f
        ]
    return results


def _readable(value):
    if isinstance(value, bytes | memoryview):
        return bytes(value).decode(errors="replace")
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def export_document(subject: Subject, results: dict[str, list[Finding]]) -> str:
    """What the hub holds about the person, as one JSON document a person can read."""
    places = {place.key: place for place in PLACES}
    document = {
        "about": "Everything the integration hub stores that names this person, by place. "
        "'found' lists where each value was and the value; for a JSON document, the whole "
        "object that holds the identifier (the person's record in it).",
        "identifier": {"kind": KINDS[subject.kind], "value": subject.value},
        "generated_at": timezone.now().isoformat(),
        "counts": {key: len(found) for key, found in results.items()},
        "places": {
            key: {"label": places[key].label, "rows": [f.as_json() for f in found]}
            for key, found in results.items()
            if found
        },
    }
    return json.dumps(document, indent=2, ensure_ascii=False, default=_readable)


def partner_records(results: dict[str, list[Finding]]) -> list[dict]:
    """The person's records at partners, by their ids (which erasure keeps): the mirrored
    records found, and the records that flows created or updated from the person's events."""
    from flows.models import FlowRun

    records = {
        (f.row.connection.slug, f.row.external_id): (f.row.object_type, "mirrored record")
        for f in results.get("mirrored_records", [])
    }
    events = [f.row.pk for f in results.get("webhook_events", [])]
    runs = (
        FlowRun.objects.filter(event_id__in=events)
        .exclude(record_id="")
        .values_list("flow__connection__slug", "flow__slug", "record_id")
    )
    for connection, flow, record_id in runs:
        records.setdefault((connection, record_id), ("", f"flow {flow}"))
    return [
        {"connection": c, "object_type": t, "external_id": i, "found_by": how}
        for (c, i), (t, how) in sorted(records.items())
    ]


def _request_erasure_at_partners(receipt: int, records: list[dict]) -> int:
    """One internal event per (endpoint with an erasure flow, partner record), processed as
    any event is: stored first, deduplicated by its id, retried, never sent twice. It carries
    the partner's ids only, never the identifier that was erased."""
    from connectors.correlation import new_correlation_id
    from webhooks.models import WebhookEndpoint, WebhookEvent
    from webhooks.services.queue import enqueue_processing

    endpoints = WebhookEndpoint.objects.filter(
        flows__enabled=True, flows__event_type=ERASURE_EVENT
    ).distinct()
    created = 0
    for endpoint in endpoints:
        for record in records:
            body = {"type": ERASURE_EVENT, "receipt": receipt, **record}
            event = WebhookEvent.objects.create(
                endpoint=endpoint,
                event_id=f"erasure:{receipt}:{record['connection']}:{record['external_id']}"[:255],
                event_type=ERASURE_EVENT,
                body=json.dumps(body, separators=(",", ":")).encode(),
                verified_by="hub: GDPR desk",
                correlation_id=new_correlation_id(),
                enqueued_at=timezone.now(),
            )
            transaction.on_commit(lambda pk=event.pk: enqueue_processing(pk))
            created += 1
    return created


def erase(subject: Subject, *, actor=None) -> tuple[int, dict[str, int]]:
    """Redact the person everywhere, in one transaction, write the receipt, and request the
    erasure of their partner records from the flows that subscribe to it.

    Returns (the receipt's audit entry id, rows changed per place)."""
    from connectors.choices import AuditAction
    from connectors.models import AuditEntry

    with transaction.atomic():
        results = find(subject)
        records = partner_records(results)
        counts = {}
        for key, findings in results.items():
            for finding in findings:
                model = finding.place.model_class()
                model.objects.filter(pk=finding.row.pk).update(
                    **finding.redacted, **finding.place.on_erase(finding.row)
                )
            counts[key] = len(findings)
        total = sum(counts.values())
        detail = ", ".join(f"{key} {n}" for key, n in counts.items() if n) or "nothing found"
        receipt = _audit(
            AuditAction.PERSONAL_DATA_ERASED,
            f"Erased one person's data, found by {KINDS[subject.kind].lower()}: "
            f"{total} rows ({detail}). Kept: ids, hashes, statuses, timestamps.",
            actor,
        )
        requested = _request_erasure_at_partners(receipt.pk, records)
        if records:
            AuditEntry.objects.filter(pk=receipt.pk).update(
                detail=f"{receipt.detail} Partner records: {len(records)}; erasure requested "
                f"through {requested} {ERASURE_EVENT} event{'s' if requested != 1 else ''}."
            )
    return receipt.pk, counts


def _audit(action: str, detail: str, actor=None):
    """One entry of the audit trail by the desk: who, when, what; never the identifier."""
    from connectors.models import AuditEntry

    return AuditEntry.objects.create(
        actor=actor if getattr(actor, "pk", None) else None,
        actor_name=getattr(actor, "get_username", lambda: "system")(),
        action=action,
        detail=detail,
    )


def record_export(subject: Subject, counts: dict[str, int], *, actor=None) -> int:
    """The audit trail's entry for an export (who, when, how many rows; never the value)."""
    from connectors.choices import AuditAction

    total = sum(counts.values())
    kind = KINDS[subject.kind].lower()
    detail = f"Exported one person's data, found by {kind}: {total} rows."
    return _audit(AuditAction.PERSONAL_DATA_EXPORTED, detail, actor).pk
