"""List columns that fit a laptop screen: a long value is cut to a few words, with the whole
of it on hover (its ``title``) and for screen readers, so a row keeps one or two lines."""

from __future__ import annotations

from django.utils.html import format_html

__all__ = ["truncated"]


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
