"""Scopes that look like full access, flagged in the console (least privilege)."""

from __future__ import annotations

import re

from django.conf import settings

DEFAULT_PATTERNS = [
    r"^\*$",
    r"(^|[.:_/ -])admin($|[.:_/ -])",
    r"full[_-]?access",
    r"\.all$",
    r"^all$",
    r"(^|[.:_/-])\*$",
]


def broad_scopes(scopes) -> list[str]:
    patterns = getattr(settings, "HUB_BROAD_SCOPE_PATTERNS", DEFAULT_PATTERNS)
    return [s for s in scopes or [] if any(re.search(p, s, re.I) for p in patterns)]
