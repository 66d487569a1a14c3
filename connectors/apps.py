from django.apps import AppConfig


class ConnectorsConfig(AppConfig):
    """Connections to partner services, their encrypted credentials and the outbound engine."""

    name = "connectors"
    verbose_name = "Connections"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from connectors import roles

        roles.connect_signals()
