"""``Link: <…>; rel="next"`` (RFC 8288), as GitHub, Shopify and many REST APIs page.

The next URL must be on the connection's own origin (it is followed as a path relative to the
connection's base URL; anything else is refused). Options: ``limit_param`` (``per_page``)."""

from urllib.parse import urlsplit

from requests.utils import parse_header_links

from syncs.pagination import register


class ForeignNextLink(ValueError):
    pass


@register
class LinkHeader:
    key = "link_header"
    label = 'Link header (rel="next")'
    options = {"limit_param": str}

    def first(self, params, options, page_size):
        return {"params": {**params, options.get("limit_param", "per_page"): page_size}}

    def request(self, state, options, page_size):
        if state.get("next"):
            return state["next"], {}
        return None, state["params"]

    def next(self, state, response, records, options, page_size):
        header = response.headers.get("Link", "")
        links = parse_header_links(header) if header else []
        target = next((link["url"] for link in links if link.get("rel") == "next"), None)
        if not target:
            return None
        base = options["_base_url"]
        wanted, given = urlsplit(base), urlsplit(target)
        if given.scheme and (given.scheme, given.netloc) != (wanted.scheme, wanted.netloc):
            raise ForeignNextLink(f"the next page link leaves the partner's origin: {target}")
        path = given.path
        prefix = wanted.path.rstrip("/")
        if prefix and path.startswith(prefix):
            path = path[len(prefix) :]
        return {
            "params": state["params"],
            "next": path + (f"?{given.query}" if given.query else ""),
        }
