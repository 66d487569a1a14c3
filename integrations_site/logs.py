"""Log output: every line carries its correlation id and the hub's structured fields.

The hub logs with ``logger.info("…", extra={"correlation_id": …, "connection": …})``. The
standard formatter drops every ``extra`` field, so the plain text format here appends the ones
the hub uses, and ``LOG_FORMAT=json`` (python-json-logger) writes one JSON object per line with
all of them. A line logged without a correlation id gets the one of the work in progress (an
event, a flow run, a request), or ``-``. None of these fields holds a secret or a payload.
"""

from __future__ import annotations

import logging

from connectors.correlation import current_correlation_id

__all__ = ["FIELDS", "CorrelationFilter", "TextFormatter"]

# The structured fields of the hub's log lines, in the order the text format shows them.
FIELDS = (
    "connection",
    "endpoint",
    "event",
    "run",
    "status",
    "attempt",
    "duration_ms",
    "error_kind",
)


class CorrelationFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "correlation_id", ""):
            record.correlation_id = current_correlation_id() or "-"
        return True


class TextFormatter(logging.Formatter):
    """``<time> <level> <logger> [<correlation id>] <message> key=value …``."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        pairs = [
            f"{name}={value}"
            for name in FIELDS
            if (value := getattr(record, name, None)) not in (None, "")
        ]
        return f"{line} {' '.join(pairs)}" if pairs else line
