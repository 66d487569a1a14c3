"""Template context for the console's login page: which single sign-on providers are on."""

from django.conf import settings


def sso(request):
    return {
        "sso_providers": settings.SSO_PROVIDERS,
        "password_login": settings.HUB_PASSWORD_LOGIN,
        "sso_refused": request.GET.get("sso") == "refused",
    }
