from django.contrib import admin

from connectors.admin.readonly import ReadOnlyAdminMixin
from sandbox.models import SandboxContact, SandboxRecord, SandboxRequest, SandboxState


@admin.register(SandboxState)
class SandboxStateAdmin(admin.ModelAdmin):
    """Switch each sandbox service's faults on and off during a demo."""

    list_display = ["__str__", "fail_next", "error_rate", "latency_ms", "rate_limit"]
    exclude = ["api_key", "webhook_secret"]


@admin.register(SandboxContact)
class SandboxContactAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["__str__", "email", "created_at", "updated_at"]
    search_fields = ["email"]
    readonly_fields = ["email", "data", "created_at", "updated_at"]


@admin.register(SandboxRecord)
class SandboxRecordAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """What the other sandbox partners hold: bookings, emails sent, invoices, tickets…"""

    list_display = ["ref", "service", "collection", "created_at", "updated_at"]
    list_filter = ["service", "collection"]
    search_fields = ["=ref"]
    readonly_fields = ["service", "collection", "ref", "data", "created_at", "updated_at"]


@admin.register(SandboxRequest)
class SandboxRequestAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["received_at", "service", "method", "path", "status", "idempotency_key"]
    list_filter = ["service", "method", "status"]
    readonly_fields = [
        "service",
        "method",
        "path",
        "idempotency_key",
        "body",
        "status",
        "received_at",
    ]
