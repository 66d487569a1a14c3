"""API key in a header (``X-API-Key: …`` or the connection's header name)."""

from connectors.choices import CredentialKind
from connectors.engine.auth import AuthMethod, register


@register
class ApiKeyHeader(AuthMethod):
    key = "api_key_header"
    credential_kind = CredentialKind.API_KEY

    def apply(self, request, connection, secret):
        request.headers[connection.api_key_header_name or "X-API-Key"] = secret
