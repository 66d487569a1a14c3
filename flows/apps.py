from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FlowsConfig(AppConfig):
    """Field mappings, flows (webhook, schedule or manual trigger → action) and flow runs."""

    name = "flows"
    verbose_name = _("Mappings and flows")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_delete, post_migrate, post_save

        from connectors.engine import config_cache
        from flows import schedules
        from flows.models import Flow, Mapping, MappingRule
        from flows.services.dispatch import on_webhook_event
        from webhooks.handlers import handler

        # every event is offered to the flows whose endpoint and type match it
        handler(endpoint="*", event_type="*")(on_webhook_event)
        from flows.admin import event_flow_runs
        from webhooks.admin import EVENT_LINKS

        EVENT_LINKS.append(("Flow runs", event_flow_runs))
        # every sweep pass also marks runs whose worker was lost as interrupted, and resumes
        # the workflows whose time has come
        from flows.services.runner import mark_interrupted
        from flows.services.workflow import resume_due
        from webhooks.services.processing import SWEEP_HOOKS

        if not any(name == "interrupted_flow_runs" for name, _hook in SWEEP_HOOKS):
            SWEEP_HOOKS.append(("interrupted_flow_runs", mark_interrupted))
            # then the workflows whose delay ended, after the lost ones were marked
            SWEEP_HOOKS.append(("resumed_flow_runs", resume_due))
        # the runner caches mapping rules, and dispatch an endpoint's flows, per process; a
        # change anywhere drops them everywhere
        config_cache.watch(Flow, Mapping, MappingRule)
        from flows import tasks

        post_migrate.connect(tasks.ensure_schedules, sender=self, dispatch_uid="flows.retention")
        post_save.connect(schedules.on_flow_saved, sender=Flow, dispatch_uid="flows.sched.save")
        post_delete.connect(
            schedules.on_flow_deleted, sender=Flow, dispatch_uid="flows.sched.delete"
        )
