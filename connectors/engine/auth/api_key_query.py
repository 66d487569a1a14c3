"""API key in the query string. Weaker: URLs are logged by proxies and partners. The hub
removes the value from its own call log."""

from connectors.choices import CredentialKind
from connectors.engine.auth import AuthMethod, register


@register
class ApiKeyQuery(AuthMethod):
    key = "api_key_query"
    credential_kind = CredentialKind.API_KEY
    weak = True

    def secret_query_params(self, connection):
        return {connection.api_key_query_param or "api_key"}

    def apply(self, request, connection, secret):
        request.params.append((connection.api_key_query_param or "api_key", secret))
