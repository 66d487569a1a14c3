import os

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ConnectorsConfig(AppConfig):
    """Connections to partner services, their encrypted credentials and the outbound engine."""

    name = "connectors"
    verbose_name = _("Connections")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.conf import settings
        from django.db.models.signals import post_migrate

        from connectors import roles, tasks
        from connectors.engine import config_cache

        roles.connect_signals()
        config_cache.connect_signals()
        post_migrate.connect(tasks.ensure_schedules, sender=self, dispatch_uid="connectors.sched")
        # oauthlib refuses plain-http token endpoints unless this variable is set; it reads it
        # on every call. Only ever set for development and the tests' local OAuth server.
        if settings.HUB_OAUTH_ALLOW_HTTP:
            os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")
        # A provider may grant other scopes than asked: the hub records the granted scopes on
        # the connection (shown beside the requested ones) instead of failing the token call.
        os.environ.setdefault("OAUTHLIB_RELAX_TOKEN_SCOPE", "1")
