"""URL configuration: the operator console (admin) and the hub's endpoints."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from governance.views import deliverables_view, diff_view, gdpr_desk_view

handler403 = "integrations_site.errors.forbidden"

urlpatterns = [
    # first: partners' deliveries are the busiest path
    path("webhooks/", include("webhooks.urls")),
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path(
        "admin/governance/diff/",
        admin.site.admin_view(diff_view),
        name="governance_diff",
    ),
    path("admin/governance/gdpr/", admin.site.admin_view(gdpr_desk_view), name="governance_gdpr"),
    path(
        "admin/governance/deliverables/",
        admin.site.admin_view(deliverables_view),
        name="governance_deliverables",
    ),
    path(
        "admin/governance/deliverables/<str:name>/",
        admin.site.admin_view(deliverables_view),
        name="governance_deliverable",
    ),
    path("admin/", admin.site.urls),
    # the console's language selector posts here (Django's set_language)
    path("i18n/", include("django.conf.urls.i18n")),
    path("oauth/", include("connectors.oauth.urls")),
    path("auth/", include("social_django.urls", namespace="social")),
    path("api/", include("api.urls")),
    # /metrics, /health/, /ready/ for the operations team (docs/monitoring.md)
    path("", include("monitoring.urls")),
]
if settings.SANDBOX_ENABLED:
    urlpatterns.append(path("sandbox/", include("sandbox.urls")))
