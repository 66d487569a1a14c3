"""Applying a field mapping: ordered rules from source paths to target paths.

Only mapped fields leave the hub: the output is built from the rules alone, never from a copy
of the source. A missing required field or a failing transform is a ``MappingError`` that names
the rule and the field; it is permanent (retrying the same payload gives the same error).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from django.utils.translation import gettext

from flows.paths import MISSING, PathError, get_path, parse_path, set_path
from flows.transforms import TransformError, get_transform

__all__ = ["MappingError", "MappingResult", "RuleSpec", "apply_rules", "canonical", "check_rule"]


class MappingError(Exception):
    """The payload cannot be mapped; ``problems`` lists each rule's error."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass(frozen=True)
class RuleSpec:
    """One rule, independent of where it is stored (a model row, a YAML entry)."""

    position: int
    source: str
    target: str
    transform: str = "copy"
    args: dict = field(default_factory=dict)
    default: object = None
    required: bool = False
    pii: bool = False

    def label(self) -> str:
        return f"rule {self.position} ({self.source or '—'} → {self.target})"


@dataclass
class MappingResult:
    output: dict
    errors: list[str]
    pii_fields: list[str]
    skipped: list[str]

    @property
    def ok(self) -> bool:
        return not self.errors


def canonical(data) -> tuple[str, str]:
    """Mapped data as canonical JSON text and its SHA-256: what the mirror stores and compares,
    and what update keys are derived from (the same data always gives the same digest)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return text, hashlib.sha256(text.encode()).hexdigest()


def check_rule(rule: RuleSpec) -> dict[str, str]:
    """Problems with a rule's definition, by attribute (for forms and file validation)."""
    problems: dict[str, str] = {}
    if rule.source:
        try:
            parse_path(rule.source)
        except PathError as exc:
            problems["source"] = str(exc)
    try:
        parts = parse_path(rule.target)
        if any(isinstance(part, int) for part in parts):
            problems["target"] = gettext("a target path names object keys only, not list indexes")
    except PathError as exc:
        problems["target"] = str(exc)
    try:
        spec = get_transform(rule.transform)
    except TransformError as exc:
        problems["transform"] = str(exc)
    else:
        if not isinstance(rule.args, dict):
            problems["args"] = gettext("arguments must be an object of name: value")
        else:
            arg_problems = spec.check_arguments(rule.args)
            if arg_problems:
                problems["args"] = "; ".join(arg_problems)
        if not rule.source and spec.needs_source and rule.default is None:
            problems["source"] = gettext(
                "a source path is needed (transform %(transform)s reads one), or a default value"
            ) % {"transform": rule.transform}
    return problems


def apply_rules(rules: list[RuleSpec], payload) -> MappingResult:
    """Map ``payload``; every rule is tried so that all errors are reported at once."""
    output: dict = {}
    errors: list[str] = []
    pii: list[str] = []
    skipped: list[str] = []
    for rule in sorted(rules, key=lambda r: r.position):
        spec = None
        try:
            spec = get_transform(rule.transform)
            value = get_path(payload, rule.source) if rule.source else MISSING
        except (TransformError, PathError) as exc:
            errors.append(f"{rule.label()}: {exc}")
            continue
        empty = value is MISSING or value is None or value == ""
        if empty and spec.needs_source:
            if rule.default is not None:
                result = rule.default
            elif rule.required:
                what = "missing" if value is MISSING else "empty"
                errors.append(f'{rule.label()}: required field "{rule.source}" is {what}')
                continue
            else:
                skipped.append(rule.target)
                continue
        else:
            try:
                result = spec(None if value is MISSING else value, rule.args, root=payload)
            except TransformError as exc:
                errors.append(f"{rule.label()}: transform {rule.transform} failed: {exc}")
                continue
            except TypeError as exc:  # arguments that do not fit the transform
                errors.append(f"{rule.label()}: transform {rule.transform}: {exc}")
                continue
        if (result is None or result == "") and rule.required:
            errors.append(f'{rule.label()}: required field "{rule.target}" came out empty')
            continue
        try:
            set_path(output, rule.target, result)
        except PathError as exc:
            errors.append(f"{rule.label()}: {exc}")
            continue
        if rule.pii:
            pii.append(rule.target)
    return MappingResult(output=output, errors=errors, pii_fields=pii, skipped=skipped)


def map_or_raise(rules: list[RuleSpec], payload) -> MappingResult:
    result = apply_rules(rules, payload)
    errors = result.errors or unsendable(result.output)
    if errors:
        raise MappingError(errors)
    return result


def unsendable(data, path: str = "") -> list[str]:
    """Fields whose text cannot be sent: a lone surrogate (``"\\ud800"`` is valid JSON, but
    no UTF-8 encoding of it exists, so no request can carry it). A permanent error that names
    the field: retrying would never succeed."""
    if isinstance(data, dict):
        return [e for name, value in data.items() for e in unsendable(value, f"{path}{name}.")]
    if isinstance(data, list):
        return [e for i, value in enumerate(data) for e in unsendable(value, f"{path}{i}.")]
    if isinstance(data, str):
        try:
            data.encode("utf-8")
        except UnicodeEncodeError:
            return [
                f'field "{path[:-1]}": its text holds a character that cannot be encoded (a lone '
                "surrogate such as \\ud800): fix it at the source"
            ]
    return []
