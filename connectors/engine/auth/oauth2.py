"""OAuth 2.0 bearer tokens, refreshed before they expire (connectors.oauth.tokens)."""

from connectors.engine.auth import AuthMethod, register


@register
class OAuth2(AuthMethod):
    key = "oauth2"
    credential_kind = None  # tokens come from connectors.oauth.tokens, not a static secret

    def apply(self, request, connection, secret):
        from connectors.oauth.tokens import access_token

        request.headers["Authorization"] = f"Bearer {access_token(connection)}"

    def on_unauthorized(self, connection, sent=None) -> bool:
        """A 401 with a token believed valid: a refresh, unless another caller already replaced
        that token (then its new one is used), then one more try."""
        from connectors.oauth.tokens import access_token

        header = (sent.headers.get("Authorization", "") if sent is not None else "") or ""
        rejected = header.removeprefix("Bearer ") or None
        access_token(connection, force=True, rejected=rejected)
        return True
