"""The console's admin site: the stock Django admin, with its home page grouped for the people
who use it. The hub's own sections come first in the order of work (connections, webhooks,
flows, syncs, monitoring, the API); the internals that a person rarely opens — users and
groups, the social-auth tables, the task queue's tables — sit in one *System* section last."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

ORDER = ["connectors", "webhooks", "flows", "syncs", "monitoring", "api", "sandbox"]
SYSTEM = {"auth", "social_django", "django_q"}


class HubAdminSite(admin.AdminSite):
    site_header = _("Integration hub")
    site_title = _("Integration hub")
    index_title = _("Operator console")

    def get_app_list(self, request, app_label=None):
        apps = super().get_app_list(request, app_label)
        if app_label is not None:
            return apps
        rank = {label: i for i, label in enumerate(ORDER)}
        mine = sorted(
            (a for a in apps if a["app_label"] not in SYSTEM),
            key=lambda a: (rank.get(a["app_label"], len(ORDER)), a["name"]),
        )
        internals = [a for a in apps if a["app_label"] in SYSTEM]
        if internals:
            models = [
                {**model, "name": f"{model['name']} ({app['name']})"}
                for app in internals
                for model in app["models"]
            ]
            mine.append(
                {
                    "name": _("System"),
                    "app_label": "system",
                    "app_url": internals[0]["app_url"],
                    "has_module_perms": True,
                    "models": models,
                }
            )
        return mine
