"""Token authentication (``Authorization: Bearer hub_…``) and per-view scopes."""

from __future__ import annotations

import hmac

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from api.models import TOKEN_PREFIX, ApiToken, digest


class TokenUser:
    """The caller of an API request: its token, and nothing of a Django user."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, token: ApiToken):
        self.token = token

    def __str__(self) -> str:
        return f"token {self.token.prefix}…"


class HubTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = request.headers.get("Authorization", "")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token.startswith(TOKEN_PREFIX) or " " in token:
            raise exceptions.AuthenticationFailed(
                "Send the token as 'Authorization: Bearer hub_…'."
            )
        row = ApiToken.objects.filter(prefix=token[:12]).first()
        # compare digests in constant time; an unknown prefix costs the same comparison
        expected = row.key_digest if row else "0" * 64
        if not hmac.compare_digest(expected, digest(token)) or row is None:
            raise exceptions.AuthenticationFailed("Unknown token.")
        if not row.active:
            raise exceptions.AuthenticationFailed("This token is revoked or expired.")
        now = timezone.now()
        if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=row.pk).update(last_used_at=now)
        return TokenUser(row), row

    def authenticate_header(self, request):
        return 'Bearer realm="integration-hub"'


class HasScope(permissions.BasePermission):
    """The view's ``required_scope`` must be among the token's scopes."""

    message = "This token lacks the scope this request needs."

    def has_permission(self, request, view):
        needed = getattr(view, "required_scope", None)
        token = request.auth
        if not isinstance(token, ApiToken):
            return False
        if needed and needed not in token.scopes:
            self.message = f"This token lacks the scope {needed!r}."
            return False
        return True


class HubTokenScheme(OpenApiAuthenticationExtension):
    target_class = "api.auth.HubTokenAuthentication"
    name = "hubToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token (hub_…) created in the console, with its scopes.",
        }
