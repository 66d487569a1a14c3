"""Template context for the console's login page: which single sign-on providers are on."""

from django.conf import settings


def sso(request):
    return {
        "sso_providers": getattr(settings, "SSO_PROVIDERS", []),
        "password_login": getattr(settings, "HUB_PASSWORD_LOGIN", True),
        "sso_refused": request.GET.get("sso") == "refused",
    }
