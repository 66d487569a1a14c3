"""Writing API call rows: what was called, how it went, and never a secret or a body."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from contextvars import ContextVar
from urllib.parse import parse_qsl, urlencode

from django.db import DatabaseError

from connectors.models import ApiCall
from connectors.rows import insert

__all__ = ["SECRET_PARAM_NAMES", "deferred", "log_attempt", "redact_path", "take_pending"]

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


# Call rows held by ``deferred()`` until the end of its block; None outside one.
_pending: ContextVar[list[ApiCall] | None] = ContextVar("hub_calllog_pending", default=None)


@contextmanager
def deferred():
    """Write the call rows of the calls made inside the block together, in one INSERT at its
    end (even when the block raises), instead of one INSERT per call.

    Flow runs use it: a run's two or three calls cost one statement. The structured log line of
    each call is still emitted at once; only the row waits. The price: a process killed in the
    middle of the block (SIGKILL, out of memory) loses that block's rows, not the log lines.
    Nested blocks write at the end of the outermost one.
    """
    if _pending.get() is not None:
        yield
        return
    rows: list[ApiCall] = []
    token = _pending.set(rows)
    failed = True
    try:
        yield
        failed = False
    finally:
        _pending.reset(token)
        if rows:
            try:
                insert(rows)
            except DatabaseError:
                if not failed:
                    raise
                # never hide the block's own exception behind the log's
                logger.exception("could not write %d call rows", len(rows))


def take_pending() -> list[ApiCall]:
    """The rows the current ``deferred()`` block holds, handed to the caller to write (with its
    own row, in one statement: see ``connectors.rows.insert_with``); the block then writes
    only the rows of calls made after this. Outside a block: an empty list."""
    pending = _pending.get()
    if not pending:
        return []
    taken = list(pending)
    pending.clear()
    return taken


def log_attempt(**fields) -> None:
    """Write one ``ApiCall`` row (at once, or at the end of a ``deferred()`` block) and emit one
    structured log line (same fields, no secrets).

    The row is written with a prepared INSERT (``connectors.rows``): the ORM's per-call SQL
    compilation cost as much as the statement itself on the engine's hot path.
    """
    row = ApiCall(**fields)
    pending = _pending.get()
    if pending is None:
        insert([row])
    else:
        pending.append(row)
    logger.info(
        "api call %s %s -> %s",
        row.method,
        row.path,
        row.status_code or row.error_kind or "-",
        extra={
            "connection": row.connection.slug,
            "correlation_id": row.correlation_id,
            "attempt": row.attempt,
            "duration_ms": row.duration_ms,
            "error_kind": row.error_kind,
        },
    )
