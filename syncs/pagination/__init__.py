"""Pagination strategies: how to ask for the first page and, from a page's answer, for the next.

A registry of small classes, one file each (cursor token in the body, ``Link: rel="next"``,
offset/limit, page number). A strategy's state is plain JSON (kept on the sync run after each
committed page, so a run killed in the middle resumes from its last committed page).

    class Strategy:
        key = "name"
        options = {"limit_param": str}   # the keys its ``pagination_options`` take
        def first(self, params: dict, options: dict, page_size: int) -> dict: ...   # the state
        def request(self, state, options, page_size) -> tuple[str | None, dict]: ...  # path, params
        def next(self, state, response, records, options, page_size) -> dict | None: ...
"""

from __future__ import annotations

import importlib

from connectors.registry import Registry
from connectors.shapes import check_object

registry: Registry = Registry("pagination")


def register(cls):
    registry.add(cls.key, cls)
    return cls


def get_strategy(key: str):
    return registry.lookup(key)()


# options every strategy takes: the partner's own "what changed since" token (docs/syncs.md)
COMMON_OPTIONS = {"sync_token_path": str, "sync_token_param": str}


def check_options(key: str, options) -> list[str]:
    """Problems with a job's ``pagination_options`` for strategy ``key``, each key named."""
    rules = {**registry.lookup(key).options, **COMMON_OPTIONS}
    first = next(iter(rules))
    return check_object(options, rules, example=f'{{"{first}": "…"}}')


def choices() -> list[tuple[str, str]]:
    return [(key, cls.label) for key, cls in sorted(registry.items())]


for _module in ("cursor_token", "link_header", "offset", "page_number"):
    importlib.import_module(f"syncs.pagination.{_module}")
