"""``page=1, 2, …`` with a page size; the last page is the one shorter than the size.

Options: ``page_param`` (``page``), ``size_param`` (``per_page``), ``first_page`` (1)."""

from syncs.pagination import register


@register
class PageNumber:
    key = "page_number"
    label = "Page number"
    options = {"page_param": str, "size_param": str, "first_page": int}

    def first(self, params, options, page_size):
        return {"params": params, "page": int(options.get("first_page", 1))}

    def request(self, state, options, page_size):
        return None, {
            **state["params"],
            options.get("page_param", "page"): state["page"],
            options.get("size_param", "per_page"): page_size,
        }

    def next(self, state, response, records, options, page_size):
        if len(records) < page_size:
            return None
        return {"params": state["params"], "page": state["page"] + 1}
