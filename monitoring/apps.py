from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MonitoringConfig(AppConfig):
    """Monitoring: rollups of what happened, rules, incidents, notification channels, the
    dashboard, ``/metrics`` and the health endpoints. It reads every app; none imports it."""

    name = "monitoring"
    verbose_name = _("Monitoring")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_migrate

        from monitoring import channels, console, rules, schedules

        rules.load()
        channels.load()
        console.install()
        post_migrate.connect(schedules.ensure, sender=self, dispatch_uid="monitoring.schedules")
