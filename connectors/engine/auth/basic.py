"""HTTP basic authentication (RFC 7617): the user name on the connection, the password a
credential."""

import base64

from connectors.choices import CredentialKind
from connectors.engine.auth import AuthMethod, register


@register
class BasicAuth(AuthMethod):
    key = "basic"
    credential_kind = CredentialKind.BASIC_PASSWORD

    def apply(self, request, connection, secret):
        pair = f"{connection.basic_username}:{secret}".encode()
        request.headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
