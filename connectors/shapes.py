"""The shape of a JSON setting (scheme options, pagination options, extra OAuth parameters):
which keys it takes and what each holds, checked with messages that name the wrong key, so
that a person who typed ``{"heder": …}`` reads *unknown key "heder" (did you mean "header"?)*
instead of a generic "invalid".

    problems = check_object(value, {"header": str, "algorithm": ("sha256", "sha512")},
                            example='{"header": "X-Signature"}')

A key's rule is a type (``str``, ``int``, ``bool``) or a tuple of the values it may take.
Every key is optional here: what is required is the caller's rule (it knows the message).
The messages are in the active language (a form's reader's, or ``LANGUAGE_CODE``).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping

from django.utils.translation import gettext, gettext_lazy

__all__ = ["check_object", "sentence", "unknown_keys"]

KINDS = {
    str: gettext_lazy("a string"),
    int: gettext_lazy("a whole number"),
    bool: gettext_lazy("true or false"),
    list: gettext_lazy("a list"),
}


def sentence(problems: list[str]) -> str:
    """The problems of one setting as the one message a form shows under it."""
    return "; ".join(problems) + "."


def unknown_keys(value: Mapping, known) -> list[str]:
    """One message per key of ``value`` that is not in ``known``, with the nearest known key."""
    known = list(known)
    problems = []
    for key in value:
        if key in known:
            continue
        close = difflib.get_close_matches(str(key), known, n=1)
        hint = gettext(' (did you mean "%(key)s"?)') % {"key": close[0]} if close else ""
        problems.append(
            gettext('unknown key "%(key)s"%(hint)s; known: %(known)s')
            % {"key": key, "hint": hint, "known": ", ".join(known) or gettext("none")}
        )
    return problems


def check_object(value, rules: Mapping[str, type | tuple], *, example: str) -> list[str]:
    """Problems with ``value`` as an object of ``rules``' keys, each named; [] when it fits."""
    if not isinstance(value, dict):
        return [gettext("a JSON object is expected, e.g. %(example)s") % {"example": example}]
    problems = unknown_keys(value, rules)
    for key, rule in rules.items():
        if key not in value:
            continue
        given = value[key]
        if isinstance(rule, tuple):
            if given not in rule:
                problems.append(
                    gettext('"%(key)s": %(given)s is not one of %(allowed)s')
                    % {
                        "key": key,
                        "given": json.dumps(given),
                        "allowed": ", ".join(json.dumps(v) for v in rule),
                    }
                )
            continue
        wrong_int = rule is int and (isinstance(given, bool) or not isinstance(given, int))
        if wrong_int or not isinstance(given, rule):
            problems.append(
                gettext('"%(key)s" is %(kind)s, not %(given)s')
                % {"key": key, "kind": KINDS.get(rule, rule.__name__), "given": json.dumps(given)}
            )
    return problems
