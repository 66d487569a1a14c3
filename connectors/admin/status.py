"""One look for status across the console: every status, health, state and level of the hub
has one *tone* here, and every page draws it the same way (``status()``, or the
``{% status %}`` template tag): the words, a symbol before them (✓ ▲ ✕ ● -), and a colour
from a palette that people with the common colour-vision deficiencies tell apart (Okabe and
Ito's, darkened for text contrast on white). Colour is never the only signal.

The tones' colours live in ``connectors/static/hub/status.css`` (CSS variables that the
dashboard's stylesheet uses too).
"""

from __future__ import annotations

from django.utils.html import format_html

__all__ = ["TONES", "http_status", "status", "tone"]

OK, INFO, WARNING, ERROR, NEUTRAL = "ok", "info", "warning", "error", "neutral"

# kind of status → its value → tone (values as the models store them)
TONES: dict[str, dict[str, str]] = {
    "connection": {
        "active": OK,
        "paused": NEUTRAL,
        "disabled": NEUTRAL,
        "failing": ERROR,
        "reauth_required": ERROR,
    },
    "health": {
        "healthy": OK,
        "degraded": WARNING,
        "failing": ERROR,
        "reauth_required": ERROR,
        "paused": NEUTRAL,
        "disabled": NEUTRAL,
    },
    "event": {
        "received": INFO,
        "processing": INFO,
        "processed": OK,
        "unhandled": WARNING,
        "retrying": WARNING,
        "failed": ERROR,
        "dead": ERROR,
        "rejected": ERROR,
        "resolved": NEUTRAL,
    },
    "flow_run": {
        "running": INFO,
        "succeeded": OK,
        "skipped": NEUTRAL,
        "retrying": WARNING,
        "failed": ERROR,
        "interrupted": ERROR,
        "waiting": INFO,
        "cancelled": NEUTRAL,
    },
    "flow_step": {
        "running": INFO,
        "succeeded": OK,
        "skipped": NEUTRAL,
        "waiting": INFO,
        "retrying": WARNING,
        "failed": ERROR,
        "cancelled": NEUTRAL,
    },
    "sync_run": {
        "running": INFO,
        "paused": WARNING,
        "succeeded": OK,
        "partial": WARNING,
        "failed": ERROR,
        "skipped": NEUTRAL,
    },
    "credential": {
        "active": OK,
        "expiring": WARNING,
        "retiring": WARNING,
        "expired": ERROR,
        "unreadable": ERROR,
        "missing": ERROR,
        "not_needed": NEUTRAL,
        "revoked": NEUTRAL,
    },
    "incident": {"open": ERROR, "acknowledged": WARNING, "resolved": OK, "ignored": NEUTRAL},
    "severity": {"critical": ERROR, "warning": WARNING},
    "level": {"error": ERROR, "warning": WARNING, "info": INFO, "ok": OK},
    "freshness": {"on time": OK, "delayed": WARNING, "error": ERROR},
}


def tone(kind: str, value) -> str:
    return TONES[kind].get(str(value), NEUTRAL)


def status(kind: str, value, label, title: str = ""):
    """The badge of one status: ``<strong class="hub-status hub-<tone>">label</strong>``."""
    if title:
        return format_html(
            '<strong class="hub-status hub-{}" title="{}">{}</strong>',
            tone(kind, value),
            title,
            label,
        )
    return format_html('<strong class="hub-status hub-{}">{}</strong>', tone(kind, value), label)


def http_status(code: int | None, fallback: str = "no answer"):
    """An HTTP status coloured by its class: 2xx ok, 3xx info, 4xx warning, 5xx error."""
    if code is None:
        return format_html('<strong class="hub-status hub-{}">{}</strong>', ERROR, fallback)
    shade = {2: OK, 3: INFO, 4: WARNING, 5: ERROR}.get(code // 100, NEUTRAL)
    return format_html('<strong class="hub-status hub-{}">{}</strong>', shade, code)
