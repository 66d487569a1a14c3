"""The shape of a JSON setting (scheme options, pagination options, extra OAuth parameters):
which keys it takes and what each holds, checked with messages that name the wrong key, so
that a person who typed ``{"heder": …}`` reads *unknown key "heder" (did you mean "header"?)*
instead of a generic "invalid".

    problems = check_object(value, {"header": str, "algorithm": ("sha256", "sha512")},
                            example='{"header": "X-Signature"}')

A key's rule is a type (``str``, ``int``, ``bool``) or a tuple of the values it may take.
Every key is optional here: what is required is the caller's rule (it knows the message).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping

__all__ = ["check_object", "unknown_keys"]

KINDS = {str: "a string", int: "a whole number", bool: "true or false", list: "a list"}


def unknown_keys(value: Mapping, known) -> list[str]:
    """One message per key of ``value`` that is not in ``known``, with the nearest known key."""
    known = list(known)
    problems = []
    for key in value:
        if key in known:
            continue
        close = difflib.get_close_matches(str(key), known, n=1)
        hint = f' (did you mean "{close[0]}"?)' if close else ""
        problems.append(f'unknown key "{key}"{hint}; known: {", ".join(known) or "none"}')
    return problems


def check_object(value, rules: Mapping[str, type | tuple], *, example: str) -> list[str]:
    """Problems with ``value`` as an object of ``rules``' keys, each named; [] when it fits."""
    if not isinstance(value, dict):
        return [f"a JSON object is expected, e.g. {example}"]
    problems = unknown_keys(value, rules)
    for key, rule in rules.items():
        if key not in value:
            continue
        given = value[key]
        if isinstance(rule, tuple):
            if given not in rule:
                allowed = ", ".join(json.dumps(v) for v in rule)
                problems.append(f'"{key}": {json.dumps(given)} is not one of {allowed}')
        elif rule is int and (isinstance(given, bool) or not isinstance(given, int)):
            problems.append(f'"{key}" is {KINDS[int]}, not {json.dumps(given)}')
        elif not isinstance(given, rule):
            problems.append(f'"{key}" is {KINDS.get(rule, rule.__name__)}, not {json.dumps(given)}')
    return problems
