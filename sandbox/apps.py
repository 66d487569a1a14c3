from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SandboxConfig(AppConfig):
    """A sandbox partner for the demo, the end-to-end tests and the benchmarks: a CRM with a
    contacts API and switchable faults, a payment provider that emits signed webhooks, and the
    partners the recipes need (emailing, booking, invoicing, support, chat).
    Installed only when ``SANDBOX_ENABLED`` is true; never in production."""

    name = "sandbox"
    verbose_name = _("Sandbox partner")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_migrate

        from sandbox import recipe_handlers, tasks  # noqa: F401 (the recipes' Python step)

        post_migrate.connect(tasks.ensure_schedules, sender=self, dispatch_uid="sandbox.sched")
