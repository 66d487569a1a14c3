from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    """Inbound webhooks: endpoints, verification schemes, stored events and their processing."""

    name = "webhooks"
    verbose_name = "Webhooks"
    default_auto_field = "django.db.models.BigAutoField"
