"""A cursor token in the answer's body (``next_cursor``), sent back as a query parameter.

Options: ``cursor_param`` (``cursor``), ``next_path`` (``next_cursor``: where the token is in the
body), ``limit_param`` (``limit``)."""

from flows.paths import MISSING, get_path
from syncs.pagination import register


@register
class CursorToken:
    key = "cursor_token"
    label = "Cursor token in the body"
    options = {"cursor_param": str, "next_path": str, "limit_param": str}

    def first(self, params, options, page_size):
        limit = options.get("limit_param", "limit")
        return {"params": {**params, limit: page_size}}

    def request(self, state, options, page_size):
        return None, state["params"]

    def next(self, state, response, records, options, page_size):
        token = get_path(response.json(), options.get("next_path", "next_cursor"))
        if token is MISSING or token in (None, ""):
            return None
        params = dict(state["params"])
        params[options.get("cursor_param", "cursor")] = token
        return {"params": params}
