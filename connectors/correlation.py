"""The correlation id of the work in progress, carried across function calls.

A webhook event, a flow run or an incoming request sets it with :func:`correlation_scope`; every
outbound call made inside sends it to the partner and writes it to its call log row, so one id
ties together everything that one cause produced.
"""

from __future__ import annotations

import contextlib
import contextvars
import uuid

__all__ = ["correlation_scope", "current_correlation_id", "new_correlation_id"]

_current: contextvars.ContextVar[str] = contextvars.ContextVar("hub_correlation_id", default="")


def new_correlation_id() -> str:
    return uuid.uuid4().hex


def current_correlation_id() -> str:
    """The id set by the innermost :func:`correlation_scope`, or an empty string."""
    return _current.get()


@contextlib.contextmanager
def correlation_scope(correlation_id: str | None = None):
    """Run a block under ``correlation_id`` (a new one when not given); yields the id."""
    value = correlation_id or new_correlation_id()
    token = _current.set(value)
    try:
        yield value
    finally:
        _current.reset(token)
