import json

from django.contrib.auth import views as auth_views
from django.http import HttpResponse
from django.urls import include, path
from oauth2_provider.models import AccessToken, RefreshToken
from oauth2_provider.views.generic import ProtectedResourceView


class Me(ProtectedResourceView):
    """A protected API endpoint: who the token belongs to. An invalid or expired token gets
    401 with ``WWW-Authenticate`` (RFC 6750 §3.1), not django-oauth-toolkit's default 403."""

    def dispatch(self, request, *args, **kwargs):
        valid, oauth_request = self.verify_request(request)
        if not valid:
            return HttpResponse(
                status=401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
            )
        request.resource_owner = oauth_request.user
        return self.get(request, *args, **kwargs)

    def get(self, request, *args, **kwargs):
        user = request.resource_owner
        return HttpResponse(
            json.dumps({"user": user.username if user else None}), content_type="application/json"
        )


def stats(request):
    """How many tokens were issued (the tests count refreshes at the server)."""
    return HttpResponse(
        json.dumps(
            {
                "access_tokens": AccessToken.objects.count(),
                "refresh_tokens": RefreshToken.objects.count(),
                "revoked_refresh_tokens": RefreshToken.objects.filter(
                    revoked__isnull=False
                ).count(),
            }
        ),
        content_type="application/json",
    )


urlpatterns = [
    path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
    path("accounts/login/", auth_views.LoginView.as_view(template_name="login.html")),
    path("api/me/", Me.as_view()),
    path("test/stats/", stats),
]
