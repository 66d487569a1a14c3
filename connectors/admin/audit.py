"""The audit trail in the console: read-only; admins, auditors and data protection officers."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from connectors.admin.readonly import ReadOnlyAdminMixin
from connectors.models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["at", "actor_name", "action", "connection_name", "fingerprint", "detail"]
    list_filter = ["action", "at"]
    search_fields = ["actor_name", "connection_name", "fingerprint", "detail"]
    date_hierarchy = "at"
    # the credential and the user as text: Django links a read-only foreign key to its page
    # whatever the reader may open, and auditors may not open credentials or users
    fields = [
        "at",
        "actor_name",
        "action",
        "connection",
        "connection_name",
        "credential_text",
        "fingerprint",
        "detail",
    ]

    readonly_fields = ["credential_text"]

    @admin.display(description=_("Credential"))
    def credential_text(self, obj):
        return str(obj.credential) if obj.credential_id else "—"
