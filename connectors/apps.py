from django.apps import AppConfig


class ConnectorsConfig(AppConfig):
    """Connections to partner services, their encrypted credentials and the outbound engine."""

    name = "connectors"
    verbose_name = "Connections"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_migrate

        from connectors import roles, tasks
        from connectors.engine import config_cache

        roles.connect_signals()
        config_cache.connect_signals()
        post_migrate.connect(tasks.ensure_schedules, sender=self, dispatch_uid="connectors.sched")
