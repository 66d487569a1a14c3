"""Connections in the console: configuration for admins, a read-only view for the others."""

from django.contrib import admin
from django.db import models
from django.urls import reverse
from django.utils.html import format_html

from connectors.choices import ConnectionStatus
from connectors.models import Connection, Credential

STATUS_COLOURS = {
    ConnectionStatus.ACTIVE: "#2e7d32",
    ConnectionStatus.PAUSED: "#6d6d6d",
    ConnectionStatus.REAUTH_REQUIRED: "#c62828",
    ConnectionStatus.FAILING: "#c62828",
    ConnectionStatus.DISABLED: "#6d6d6d",
}


class CredentialInline(admin.TabularInline):
    """The connection's credentials, by fingerprint. Shown only to users who may view
    credentials (Django hides inlines without the view permission)."""

    model = Credential
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ["kind", "label", "fingerprint", "readability", "state", "expires_at", "created_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False  # secrets are added on the credential page, with its write-only form

    @admin.display(description="Readable")
    def readability(self, obj):
        return "yes" if obj.readable else "unreadable: encryption key missing"


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "slug",
        "service_kind",
        "environment",
        "status_badge",
        "owner",
        "updated_at",
    ]
    list_filter = ["status", "environment", "service_kind", "auth_method"]
    search_fields = ["name", "slug", "owner", "base_url"]
    prepopulated_fields = {"slug": ["name"]}
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    readonly_fields = ["status_changed_at", "created_at", "updated_at", "credentials_link"]
    inlines = [CredentialInline]
    fieldsets = [
        (None, {"fields": ["name", "slug", "service_kind", "environment", "owner"]}),
        ("Status", {"fields": ["status", "status_reason", "status_changed_at"]}),
        (
            "API",
            {
                "fields": [
                    "base_url",
                    "auth_method",
                    "api_version",
                    "requested_scopes",
                    "granted_scopes",
                    "credentials_link",
                ]
            },
        ),
        (
            "Reliability",
            {
                "fields": [
                    "connect_timeout",
                    "read_timeout",
                    "retry_max_attempts",
                    "retry_backoff_base",
                    "retry_backoff_cap",
                    "retry_max_elapsed",
                    "rate_limit_requests",
                    "rate_limit_window_seconds",
                ]
            },
        ),
        ("GDPR", {"fields": ["purpose", "retention_days"]}),
        ("Notes", {"fields": ["notes", "created_at", "updated_at"]}),
    ]

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj):
        colour = STATUS_COLOURS.get(obj.status, "#333")
        label = obj.get_status_display()
        if obj.status_reason:
            return format_html(
                '<strong style="color:{}" title="{}">{}</strong>', colour, obj.status_reason, label
            )
        return format_html('<strong style="color:{}">{}</strong>', colour, label)

    @admin.display(description="Credentials")
    def credentials_link(self, obj):
        if obj is None or obj.pk is None:
            return "Save the connection first, then add its credentials."
        url = reverse("admin:connectors_credential_add") + f"?connection={obj.pk}"
        return format_html(
            '<a href="{}">Add a credential</a> (secrets are write-only: only their '
            "fingerprint is ever shown)",
            url,
        )
