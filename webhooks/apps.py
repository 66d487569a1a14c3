from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WebhooksConfig(AppConfig):
    """Inbound webhooks: endpoints, verification schemes, stored events and their processing."""

    name = "webhooks"
    verbose_name = _("Webhooks")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_migrate

        from connectors.engine import config_cache
        from webhooks import schedules
        from webhooks.models import WebhookEndpoint

        config_cache.watch(WebhookEndpoint)
        # Site code registers its handlers in modules named by this setting.
        import importlib

        from django.conf import settings

        for module in settings.HUB_HANDLER_MODULES:
            importlib.import_module(module)
        post_migrate.connect(schedules.ensure, sender=self, dispatch_uid="webhooks.schedules")
