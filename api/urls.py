from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from api import errors, views

urlpatterns = [
    path("flows/", views.FlowList.as_view(), name="api-flows"),
    path("flows/<slug:slug>/run/", views.RunFlow.as_view(), name="api-flow-run"),
    path("runs/<int:pk>/", views.RunDetail.as_view(), name="api-run"),
    path("schema/", SpectacularAPIView.as_view(permission_classes=[]), name="api-schema"),
    path(
        "docs/",
        SpectacularSwaggerView.as_view(url_name="api-schema", permission_classes=[]),
        name="api-docs",
    ),
    # last: everything else under /api/ is a JSON 404, never Django's HTML page
    re_path(r"^", errors.not_found),
]
