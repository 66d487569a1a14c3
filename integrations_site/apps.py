from django.contrib.admin.apps import AdminConfig


class HubAdminConfig(AdminConfig):
    """Django's admin with the hub's site (integrations_site.admin_site.HubAdminSite)."""

    default_site = "integrations_site.admin_site.HubAdminSite"
