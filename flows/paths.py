"""Dotted paths into JSON-like data: ``data.object.customer_details.email``, ``items.0.sku``
or ``items[0].sku`` to read; ``properties.email`` to write nested objects."""

from __future__ import annotations

import functools
import re

from django.utils.translation import gettext

__all__ = ["MISSING", "PathError", "get_path", "leaves", "parse_path", "set_path"]

MISSING = object()

_SEGMENT = re.compile(r"[A-Za-z0-9_\-$@]+")


class PathError(ValueError):
    pass


def parse_path(path: str) -> tuple[str | int, ...]:
    """``"a.b[0].c"`` → ``("a", "b", 0, "c")``; ``PathError`` for a malformed path. Paths come
    from configuration: parsed once each (cached)."""
    if not isinstance(path, str):
        raise PathError(gettext("empty path"))
    return _parse(path)


@functools.lru_cache(maxsize=4096)
def _parse(path: str) -> tuple[str | int, ...]:
    if not path.strip():
        raise PathError(gettext("empty path"))
    parts: list[str | int] = []
    for chunk in path.strip().replace("[", ".[").split("."):
        if chunk.startswith("["):
            if not re.fullmatch(r"\[\d+\]", chunk):
                raise PathError(
                    gettext('malformed index "%(index)s" in "%(path)s"')
                    % {"index": chunk, "path": path}
                )
            parts.append(int(chunk[1:-1]))
        elif chunk.isdigit():
            parts.append(int(chunk))
        elif _SEGMENT.fullmatch(chunk):
            parts.append(chunk)
        else:
            raise PathError(
                gettext('malformed path "%(path)s" (at "%(at)s")') % {"path": path, "at": chunk}
            )
    return tuple(parts)


def get_path(data, path: str):
    """The value at ``path``, or ``MISSING``. A numeric segment indexes a list (or is a key of
    an object, where the object has such a key)."""
    current = data
    for part in parse_path(path):
        if isinstance(current, dict):
            key = str(part)
            if key not in current:
                return MISSING
            current = current[key]
        elif isinstance(current, list) and isinstance(part, int):
            if part >= len(current):
                return MISSING
            current = current[part]
        else:
            return MISSING
    return current


def leaves(data, prefix: str = ""):
    """``{"a": {"b": 1}, "c": 2}`` → ``("a.b", 1), ("c", 2)``: every non-object value with its
    dotted path (lists are values)."""
    if isinstance(data, dict):
        for name, value in data.items():
            yield from leaves(value, f"{prefix}{name}.")
    else:
        yield prefix[:-1], data


def set_path(target: dict, path: str, value) -> None:
    """Write ``value`` at ``path``, creating nested objects. Target paths name object keys
    only (no list indexes)."""
    parts = parse_path(path)
    if any(isinstance(part, int) for part in parts):
        raise PathError(f'a target path names object keys only, not list indexes: "{path}"')
    current = target
    for part in parts[:-1]:
        nested = current.setdefault(part, {})
        if not isinstance(nested, dict):
            raise PathError(f'"{path}" goes through "{part}", which is already a value')
        current = nested
    current[parts[-1]] = value
