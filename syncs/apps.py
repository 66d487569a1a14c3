from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SyncsConfig(AppConfig):
    """Scheduled syncs: jobs with pagination and cursors, their runs, and the record mirror."""

    name = "syncs"
    verbose_name = _("Scheduled syncs")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_delete, post_migrate, post_save

        from syncs import schedules
        from syncs.models import SyncJob

        post_save.connect(schedules.on_job_saved, sender=SyncJob, dispatch_uid="syncs.save")
        post_delete.connect(schedules.on_job_deleted, sender=SyncJob, dispatch_uid="syncs.del")
        post_migrate.connect(schedules.ensure, sender=self, dispatch_uid="syncs.schedules")

        from connectors.admin.connection import CONNECTION_PANELS
        from syncs.admin import connection_sync_panel

        CONNECTION_PANELS.append(connection_sync_panel)

        from flows import iac
        from syncs.iac import SECTION

        if SECTION.name not in iac.SECTIONS:
            iac.register(SECTION)
