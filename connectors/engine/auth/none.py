"""No authentication (public APIs, or partners that authenticate by IP)."""

from connectors.engine.auth import AuthMethod, register


@register
class NoAuth(AuthMethod):
    key = "none"

    def apply(self, request, connection, secret):
        return None
