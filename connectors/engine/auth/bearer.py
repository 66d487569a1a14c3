"""A static bearer token (``Authorization: Bearer …``), e.g. a personal access token."""

from connectors.choices import CredentialKind
from connectors.engine.auth import AuthMethod, register


@register
class BearerToken(AuthMethod):
    key = "bearer"
    credential_kind = CredentialKind.ACCESS_TOKEN

    def apply(self, request, connection, secret):
        request.headers["Authorization"] = f"Bearer {secret}"
