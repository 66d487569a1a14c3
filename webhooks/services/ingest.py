"""The inbound path: refuse cheaply, verify, store once, acknowledge, enqueue.

Order (docs/webhooks.md): endpoint → size → IP allowlist → secrets → signature and timestamp →
content type → JSON → one INSERT under the (endpoint, event id) unique constraint → 202, with the
processing task enqueued on commit. Nothing here calls another service. Every refusal is an
:class:`IngestResult` with a status and a short reason; no header or body can raise past it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import ipaddress
import json
import logging
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from connectors.choices import CredentialKind
from connectors.correlation import new_correlation_id
from connectors.engine import config_cache
from connectors.models import Credential
from connectors.secrets import SecretUnreadable
from webhooks.choices import EventStatus
from webhooks.models import WebhookEndpoint, WebhookEvent
from webhooks.schemes import Delivery, SignatureRejected, get_scheme
from webhooks.schemes import registry as scheme_registry
from webhooks.services import refusals
from webhooks.services.queue import enqueue_after_commit

__all__ = ["IngestResult", "receive"]

logger = logging.getLogger("webhooks.ingest")

READ_CHUNK = 64 * 1024
# Stored header values are dropped for these names: they can authenticate a request.
SECRET_HEADER_WORDS = (
    "authorization",
    "cookie",
    "token",
    "secret",
    "api-key",
    "apikey",
    "password",
)


@dataclass
class IngestResult:
    status: int
    detail: str
    event_pk: int | None = None
    extra: dict = field(default_factory=dict)

    def body(self) -> dict:
        data = {"detail": self.detail, **self.extra}
        if self.event_pk is not None:
            data["event"] = self.event_pk
        return data


class _Refused(Exception):
    def __init__(self, status: int, reason: str, *, count: bool = True):
        super().__init__(reason)
        self.status, self.reason, self.count = status, reason, count


@dataclass
class _EndpointConfig:
    endpoint: WebhookEndpoint
    networks: list
    content_types: set[str]
    secrets: list  # [(plaintext, fingerprint)]
    secret_problem: str


def load_endpoint_config(slug: str) -> _EndpointConfig | None:
    """An enabled endpoint with its verification secrets, or None (uncached: the console's
    view of it; the request path goes through :func:`endpoint_config`)."""
    endpoint = (
        WebhookEndpoint.objects.select_related("connection").filter(slug=slug, enabled=True).first()
    )
    if endpoint is None:
        return None
    secrets, problem = [], ""
    if not endpoint.unsigned and endpoint.scheme not in scheme_registry:
        problem = f"unknown verification scheme {endpoint.scheme!r}"
    elif not endpoint.unsigned:
        credentials = Credential.objects.usable().filter(
            connection=endpoint.connection, kind=CredentialKind.WEBHOOK_SIGNING_SECRET
        )
        for credential in credentials:
            try:
                plaintext = credential.value.reveal()
            except SecretUnreadable:
                problem = "a signing secret is unreadable: its encryption key is missing"
                continue
            if plaintext:
                secrets.append((plaintext, credential.fingerprint))
        if not secrets:
            problem = problem or "no usable webhook signing secret on the connection"
    return _EndpointConfig(
        endpoint, endpoint.allowed_networks(), endpoint.content_types(), secrets, problem
    )


# Endpoint and secret changes made in another process are seen within this many seconds.
CONFIG_MAX_AGE = 1.0


def endpoint_config(slug: str) -> _EndpointConfig | None:
    config_cache.current_generation(max_age=CONFIG_MAX_AGE)
    return config_cache.cached_value("webhook-endpoint", slug, lambda: load_endpoint_config(slug))


def _client_ip(request) -> str:
    remote = request.META.get("REMOTE_ADDR", "")
    trusted = settings.HUB_TRUSTED_PROXIES
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if forwarded and remote in trusted:
        # The right-most address not added by one of our proxies is the client.
        for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
            if hop not in trusted:
                return hop
    return remote


def _read_body(request, limit: int) -> bytes:
    """Read the raw body, refusing past ``limit``: from Content-Length before reading a byte,
    and by counting for a chunked body (which Django itself would read as empty: it only
    trusts Content-Length, so a server that de-chunks and says so with
    ``wsgi.input_terminated``, like gunicorn, is read from its input stream directly)."""
    declared = request.META.get("CONTENT_LENGTH") or ""
    stream = request
    if declared:
        try:
            if int(declared) > limit:
                raise _Refused(413, f"body larger than {limit} bytes")
        except ValueError:
            raise _Refused(400, "malformed Content-Length header") from None
    elif request.META.get("wsgi.input_terminated"):
        stream = request.META["wsgi.input"]
    chunks, size = [], 0
    while True:
        chunk = stream.read(min(READ_CHUNK, limit + 1 - size))
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise _Refused(413, f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _locate(source: str, headers, payload, body: bytes) -> str:
    if source == "body-hash":
        return "sha256:" + hashlib.sha256(body).hexdigest()
    kind, _, where = source.partition(":")
    if kind == "header":
        return (headers.get(where) or "").strip()
    value = payload
    for part in where.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return ""
    return "" if value is None or isinstance(value, dict | list) else str(value)


@functools.lru_cache(maxsize=512)
def _is_secret_header(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in SECRET_HEADER_WORDS)


def redact_headers(headers) -> dict:
    return {
        name: "[redacted]" if _is_secret_header(name) else value[:2000]
        for name, value in headers.items()
    }


# the kind of a refusal, from its status: the metrics' label (a fixed set, never free text)
REFUSAL_KINDS = {401: "signature", 403: "address", 413: "size", 400: "malformed", 503: "not_ready"}


def _count_rejection(endpoint: WebhookEndpoint, reason: str, status: int, ip: str) -> None:
    # in memory, written in one UPDATE per endpoint a few seconds later (refusals.py)
    refusals.counter.add(endpoint.pk, reason, REFUSAL_KINDS.get(status, "other"), ip)


def _verify(config: _EndpointConfig, request, body: bytes) -> str:
    endpoint = config.endpoint
    if endpoint.unsigned:
        return "unsigned"
    scheme = get_scheme(endpoint.scheme)
    delivery = Delivery(request.headers, body, time.time())
    verified = scheme.verify(
        delivery,
        config.secrets,
        tolerance=endpoint.timestamp_tolerance_seconds,
        options=endpoint.scheme_options or {},
    )
    return verified.fingerprint


def receive(slug: str, request) -> IngestResult:
    """Handle one delivery to ``/webhooks/<slug>/``."""
    config = endpoint_config(slug)
    if config is None:
        return IngestResult(404, "unknown webhook endpoint")
    endpoint = config.endpoint
    ip = ""
    try:
        # the sender's address first: a refused sender's body is not even read
        ip = _client_ip(request)
        if config.networks:
            try:
                address = ipaddress.ip_address(ip)
            except ValueError:
                raise _Refused(403, "sender address not allowed") from None
            if not any(address in network for network in config.networks):
                raise _Refused(403, "sender address not allowed")
        body = _read_body(request, endpoint.max_body_bytes)
        if config.secret_problem:
            raise _Refused(503, f"endpoint not ready: {config.secret_problem}")
        try:
            fingerprint = _verify(config, request, body)
        except SignatureRejected as exc:
            raise _Refused(401, exc.reason) from None
        media_type = (request.content_type or "").split(";")[0].strip().lower()
        if config.content_types and media_type not in config.content_types:
            raise _Refused(415, f"content type {media_type or 'missing'} not accepted", count=False)
    except _Refused as refused:
        if refused.count:
            _count_rejection(endpoint, refused.reason, refused.status, ip)
        logger.info(
            "webhook refused on %s: %s",
            slug,
            refused.reason,
            extra={"endpoint": slug, "status": refused.status},
        )
        return IngestResult(refused.status, refused.reason)
    return _store(config, request, body, fingerprint, ip)


def _store(config, request, body: bytes, fingerprint: str, ip: str) -> IngestResult:
    endpoint = config.endpoint
    scheme = get_scheme(endpoint.scheme) if endpoint.scheme else None
    try:
        payload = json.loads(body)
        valid = True
    except (ValueError, RecursionError):
        # RecursionError: a body nested deeper than the parser's recursion limit (1,000
        # levels): not JSON the hub can process, kept as rejected like any invalid body
        payload, valid = None, False
    answer = scheme.handshake(payload) if scheme is not None and valid else None
    if answer is not None:
        return IngestResult(200, "handshake", extra=answer)
    id_source = endpoint.event_id_source or (scheme.event_id_source if scheme else "body-hash")
    type_source = endpoint.event_type_source or (scheme.event_type_source if scheme else "")
    event_id = ""
    # A partner's id in a header is used even for a body that is not JSON, so that its
    # redelivery of the same (rejected) body is recognised the same way as the first
    if valid or id_source.startswith("header:"):
        event_id = _locate(id_source, request.headers, payload, body)
    if not event_id and scheme is not None and not endpoint.event_id_source:
        event_id = scheme.event_id_from(request.headers)
    event_id = event_id[:255]
    if not event_id:
        # No id where the partner should put one (or no JSON): the body hash still makes a
        # byte-identical redelivery a duplicate.
        event_id = "sha256:" + hashlib.sha256(body).hexdigest()
    event_type = (
        _locate(type_source, request.headers, payload, body)[:200] if type_source and valid else ""
    )
    status = EventStatus.RECEIVED if valid else EventStatus.REJECTED
    correlation_id = request.headers.get("X-Request-ID", "")[:100] or new_correlation_id()
    fields = {
        "endpoint_id": endpoint.pk,
        "event_id": event_id,
        "event_type": event_type,
        "body": body,
        "headers": redact_headers(request.headers),
        "status": status,
        "verified_by": fingerprint,
        "source_ip": ip or None,
        "correlation_id": correlation_id,
        "last_error": "" if valid else "body is not valid JSON",
        "enqueued_at": timezone.now() if valid else None,
    }
    try:
        # one INSERT committed on its own (a savepoint only inside an outer transaction, so a
        # duplicate does not break it); the event's task is queued once it is committed
        in_transaction = transaction.get_connection().in_atomic_block
        with transaction.atomic() if in_transaction else contextlib.nullcontext():
            event = WebhookEvent.objects.create(**fields)
    except IntegrityError:
        existing = WebhookEvent.objects.filter(endpoint=endpoint, event_id=event_id).first()
        return IngestResult(200, "duplicate", existing.pk if existing else None)
    if not valid:
        return IngestResult(400, "body is not valid JSON (kept for inspection)", event.pk)
    enqueue_after_commit(event.pk)
    return IngestResult(202, "accepted", event.pk)
