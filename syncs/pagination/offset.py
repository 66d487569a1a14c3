"""``offset`` and ``limit`` parameters; the last page is the one shorter than the limit.

Options: ``offset_param`` (``offset``), ``limit_param`` (``limit``). Offsets shift when records
change during a run: prefer a cursor where the partner has one."""

from syncs.pagination import register


@register
class Offset:
    key = "offset"
    label = "Offset / limit"
    options = {"offset_param": str, "limit_param": str}

    def first(self, params, options, page_size):
        return {"params": params, "offset": 0}

    def request(self, state, options, page_size):
        return None, {
            **state["params"],
            options.get("offset_param", "offset"): state["offset"],
            options.get("limit_param", "limit"): page_size,
        }

    def next(self, state, response, records, options, page_size):
        if len(records) < page_size:
            return None
        return {"params": state["params"], "offset": state["offset"] + len(records)}
