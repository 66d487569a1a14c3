from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The hub's REST API for site code: tokens with scopes, manual flow runs."""

    name = "api"
    verbose_name = "REST API"
    default_auto_field = "django.db.models.BigAutoField"
