from django.contrib import admin

from connectors.admin.readonly import ReadOnlyAdminMixin
from sandbox.models import SandboxContact, SandboxRequest, SandboxState


@admin.register(SandboxState)
class SandboxStateAdmin(admin.ModelAdmin):
    """Switch the sandbox CRM's faults on and off during a demo."""

    list_display = ["__str__", "fail_next", "error_rate", "latency_ms", "rate_limit"]
    exclude = ["api_key"]


@admin.register(SandboxContact)
class SandboxContactAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["__str__", "email", "created_at", "updated_at"]
    search_fields = ["email"]
    readonly_fields = ["email", "data", "created_at", "updated_at"]


@admin.register(SandboxRequest)
class SandboxRequestAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["received_at", "method", "path", "status", "idempotency_key"]
    list_filter = ["method", "status"]
    readonly_fields = ["method", "path", "idempotency_key", "body", "status", "received_at"]
