"""The audit trail in the console: read-only for everyone."""

from django.contrib import admin

from connectors.models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["at", "actor_name", "action", "connection_name", "fingerprint", "detail"]
    list_filter = ["action", "at"]
    search_fields = ["actor_name", "connection_name", "fingerprint", "detail"]
    date_hierarchy = "at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
