"""Writing API call rows: what was called, how it went, and never a secret or a body."""

from __future__ import annotations

import functools
import logging
from urllib.parse import parse_qsl, urlencode

from django.db import connections, router

from connectors.models import ApiCall

__all__ = ["SECRET_PARAM_NAMES", "log_attempt", "redact_path"]

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


@functools.lru_cache(maxsize=4)
def _insert_sql(vendor: str, quote) -> tuple[str, tuple]:
    fields = tuple(f for f in ApiCall._meta.concrete_fields if not f.primary_key)
    columns = ", ".join(quote(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    table = quote(ApiCall._meta.db_table)
    return f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", fields  # noqa: S608


def log_attempt(**fields) -> None:
    """Insert one ``ApiCall`` row and emit one structured log line (same fields, no secrets).

    The row is written with one prepared INSERT built from the model's own field list (the ORM's
    per-call SQL compilation cost as much as the statement itself on the engine's hot path);
    values go through each field's ``get_db_prep_save``, exactly as ``save()`` would.
    """
    row = ApiCall(**fields)
    connection = connections[router.db_for_write(ApiCall)]
    sql, model_fields = _insert_sql(connection.vendor, connection.ops.quote_name)
    params = [f.get_db_prep_save(getattr(row, f.attname), connection) for f in model_fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
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
