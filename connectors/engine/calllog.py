"""Writing API call rows: what was called, how it went, and never a secret or a body."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from contextvars import ContextVar
from urllib.parse import parse_qsl, urlencode

from connectors.models import ApiCall

__all__ = ["SECRET_PARAM_NAMES", "log_attempt", "redact_path", "run_scope"]

logger = logging.getLogger("connectors.engine")

# Query parameters whose values are removed from logs whatever the auth method.
SECRET_PARAM_NAMES = frozenset(
    {
        "api_key",
        "apikey",
        "key",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "client_secret",
        "secret",
        "password",
        "passwd",
        "pwd",
        "signature",
        "sig",
        "auth",
        "code",
        "session",
        "sessionid",
    }
)
REDACTED = "[redacted]"


def redact_path(path: str, params, extra_secret_names: set[str]) -> str:
    """The path with its query (from the path and ``params``), secret values replaced."""
    base, _, query = path.partition("?")
    pairs = parse_qsl(query, keep_blank_values=True) + [(str(k), str(v)) for k, v in params or []]
    if not pairs:
        return base[:1000]
    secret_names = {name.lower() for name in extra_secret_names} | SECRET_PARAM_NAMES
    cleaned = [(k, REDACTED if k.lower() in secret_names else v) for k, v in pairs]
    return f"{base}?{urlencode(cleaned, safe='[]')}"[:1000]


# The run whose calls are being made ("flow_run:12", "sync_run:3"); empty outside one.
_run_ref: ContextVar[str] = ContextVar("hub_calllog_run_ref", default="")
# The workflow step whose calls are being made (its name); empty outside one.
_step: ContextVar[str] = ContextVar("hub_calllog_step", default="")


@contextmanager
def run_scope(ref: str):
    """Calls made inside the block carry ``ref`` in their row's ``run_ref``: a run's page lists
    exactly its calls, and a run whose worker died says what it had done."""
    token = _run_ref.set(ref)
    try:
        yield
    finally:
        _run_ref.reset(token)


@contextmanager
def step_scope(name: str):
    """Calls made inside the block carry the workflow step's ``name`` in their row's ``step``:
    a run's page lists each step's calls, every attempt's."""
    token = _step.set(name[:100])
    try:
        yield
    finally:
        _step.reset(token)


def log_safe_path(path: str) -> str:
    """The path with its query values replaced by ``…`` (``/contacts?email=…``)."""
    base, question, query = path.partition("?")
    if not question:
        return path
    names = [part.partition("=")[0] for part in query.split("&") if part]
    return f"{base}?{'&'.join(f'{name}=…' for name in names)}"


def log_attempt(**fields) -> None:
    """Write one ``ApiCall`` row and emit one structured log line (same fields, no secrets).

    The row is committed when the attempt ends, before the caller sees the result (the engine
    never calls inside a transaction of its own): a worker killed a moment later leaves every
    call it made in the console.
    """
    row = ApiCall.objects.create(run_ref=_run_ref.get(), step=_step.get(), **fields)
    logger.info(
        "api call %s %s -> %s",
        row.method,
        # a query often names a person (?email=…): logs keep its parameter names only; the
        # row, which has a retention and the GDPR desk, keeps the whole path
        log_safe_path(row.path),
        row.status_code or row.error_kind or "-",
        extra={
            "connection": row.connection.slug,
            "correlation_id": row.correlation_id,
            "run": row.run_ref,
            "attempt": row.attempt,
            "duration_ms": row.duration_ms,
            "error_kind": row.error_kind,
        },
    )
