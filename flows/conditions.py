"""Flow conditions: simple comparisons on fields of the incoming data, all of which must hold.

[{"path": "data.object.status", "op": "eq", "value": "succeeded"},
 {"path": "data.object.amount", "op": "gte", "value": 1000}]
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.utils.translation import gettext

from flows.paths import MISSING, PathError, get_path, parse_path

__all__ = ["OPERATORS", "check_condition", "evaluate"]


def _number(value):
    if isinstance(value, bool):
        raise TypeError
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise TypeError from None


def _compare(op):
    def compare(found, expected) -> bool:
        try:
            a, b = _number(found), _number(expected)
        except TypeError:
            a, b = str(found), str(expected)
        return op(a, b)

    return compare


OPERATORS = {
    "eq": lambda found, expected: found == expected,
    "ne": lambda found, expected: found != expected,
    "in": lambda found, expected: found in expected,
    "not_in": lambda found, expected: found not in expected,
    "gt": _compare(lambda a, b: a > b),
    "gte": _compare(lambda a, b: a >= b),
    "lt": _compare(lambda a, b: a < b),
    "lte": _compare(lambda a, b: a <= b),
    "contains": lambda found, expected: isinstance(found, (str, list)) and expected in found,
    "exists": lambda found, expected: True,
    "missing": lambda found, expected: False,
}
NO_VALUE = {"exists", "missing"}


def check_condition(condition) -> list[str]:
    """Problems with a condition's definition."""
    if condition in (None, ""):
        return []
    if not isinstance(condition, list):
        return [gettext("a condition is a list of {path, op, value} comparisons")]
    problems = []
    for index, item in enumerate(condition):
        where = f"condition[{index}]"
        if not isinstance(item, dict):
            problems.append(gettext("%(where)s: expected {path, op, value}") % {"where": where})
            continue
        unknown = set(item) - {"path", "op", "value"}
        if unknown:
            problems.append(
                gettext('%(where)s: unknown field "%(field)s"')
                % {"where": where, "field": sorted(unknown)[0]}
            )
        try:
            parse_path(item.get("path", ""))
        except PathError as exc:
            problems.append(f"{where}.path: {exc}")
        op = item.get("op")
        if op not in OPERATORS:
            problems.append(
                gettext('%(where)s.op: unknown operator "%(op)s" (known: %(known)s)')
                % {"where": where, "op": op, "known": ", ".join(OPERATORS)}
            )
        elif op not in NO_VALUE and "value" not in item:
            problems.append(
                gettext("%(where)s.value: operator %(op)s needs a value")
                % {"where": where, "op": op}
            )
        elif op in ("in", "not_in") and not isinstance(item.get("value"), list):
            problems.append(
                gettext("%(where)s.value: operator %(op)s needs a list")
                % {"where": where, "op": op}
            )
    return problems


def evaluate(condition, payload) -> tuple[bool, str]:
    """(holds, the first comparison that does not hold, described)."""
    for item in condition or []:
        found = get_path(payload, item["path"])
        op = item["op"]
        if found is MISSING:
            holds = op == "missing"
        else:
            try:
                holds = OPERATORS[op](found, item.get("value"))
            except TypeError:
                holds = False
        if not holds:
            # the found value is not shown: it may be personal data
            what = "missing" if found is MISSING else "present"
            return False, f"{item['path']} {op} {item.get('value')!r} does not hold ({what})"
    return True, ""
