from django.urls import path

from monitoring import views
from monitoring.health import LiveView, ReadyView

urlpatterns = [
    path("metrics", views.metrics, name="metrics"),
    path("health/", LiveView.as_view(), name="health"),
    path("ready/", ReadyView.as_view(), name="ready"),
]
