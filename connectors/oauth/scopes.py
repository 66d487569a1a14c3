"""Scopes that look like full access, flagged in the console (least privilege)."""

from __future__ import annotations

import re

from django.conf import settings


def broad_scopes(scopes) -> list[str]:
    """The scopes matching one of ``HUB_BROAD_SCOPE_PATTERNS`` (regular expressions)."""
    patterns = settings.HUB_BROAD_SCOPE_PATTERNS
    return [s for s in scopes or [] if any(re.search(p, s, re.I) for p in patterns)]
