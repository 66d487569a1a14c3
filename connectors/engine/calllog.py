"""Writing API call rows: what was called, how it went, and never a secret or a body."""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl, urlencode

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


def log_attempt(**fields) -> ApiCall:
    """Insert one ``ApiCall`` row and emit one structured log line (same fields, no secrets)."""
    row = ApiCall.objects.create(**fields)
    logger.info(
        "api call %s %s -> %s",
        fields["method"],
        fields["path"],
        fields.get("status_code") or fields.get("error_kind") or "-",
        extra={
            "connection": fields["connection"].slug,
            "correlation_id": fields.get("correlation_id", ""),
            "attempt": fields.get("attempt"),
            "duration_ms": fields.get("duration_ms"),
            "error_kind": fields.get("error_kind", ""),
        },
    )
    return row
