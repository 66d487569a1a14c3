"""The audit trail in the console: read-only for everyone."""

from django.contrib import admin

from connectors.admin.readonly import ReadOnlyAdminMixin
from connectors.models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["at", "actor_name", "action", "connection_name", "fingerprint", "detail"]
    list_filter = ["action", "at"]
    search_fields = ["actor_name", "connection_name", "fingerprint", "detail"]
    date_hierarchy = "at"
