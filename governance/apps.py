from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class GovernanceConfig(AppConfig):
    """Governance: the pre-production gate (Django system checks under the ``integrations``
    tag) and the per-connection checklist. It reads every app; none imports it."""

    name = "governance"
    verbose_name = _("Governance")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.core import checks

        from governance import console, gate

        checks.register(gate.system_check, "integrations", deploy=True)
        console.install()
        from flows.commands import INTEGRATIONS_ACTIONS
        from governance.cli import DiffAction

        INTEGRATIONS_ACTIONS.setdefault("diff", DiffAction())
