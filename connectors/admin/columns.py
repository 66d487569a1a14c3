"""List columns that fit a laptop screen: a long value is cut to a few words, with the whole
of it on hover (its ``title``) and for screen readers, so a row keeps one or two lines."""

from __future__ import annotations

from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.timezone import localtime

__all__ = ["truncated", "when"]


def when(value) -> str:
    """A time in a list or a panel: the hub's zone, the reader's language, the zone shown
    (``2026-12-02 18:40 CET``, ``02/12/2026 18:40 CET``)."""
    return date_format(localtime(value), "SHORT_DATETIME_FORMAT") if value else "—"


def truncated(text: str | None, limit: int = 80):
    """``text`` as it is when short; else its first ``limit`` characters and "…", the whole
    text in the ``title`` (shown on hover) and in ``aria-label``."""
    text = text or ""
    if len(text) <= limit:
        return text
    return format_html(
        '<span class="hub-truncated" title="{}" aria-label="{}">{}…</span>',
        text,
        text,
        text[:limit].rstrip(),
    )
