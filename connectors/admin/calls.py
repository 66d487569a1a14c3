"""The call log in the console: read-only, filterable, searchable by correlation id."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from connectors.admin.columns import truncated
from connectors.admin.readonly import ReadOnlyAdminMixin
from connectors.admin.scale import BoundedListMixin
from connectors.admin.status import http_status
from connectors.models import ApiCall


class StatusClassFilter(admin.SimpleListFilter):
    title = "status class"
    parameter_name = "status_class"

    def lookups(self, request, model_admin):
        return [("2", "2xx"), ("3", "3xx"), ("4", "4xx"), ("5", "5xx"), ("none", "no answer")]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "none":
            return queryset.filter(status_code__isnull=True)
        if value in {"2", "3", "4", "5"}:
            low = int(value) * 100
            return queryset.filter(status_code__gte=low, status_code__lt=low + 100)
        return queryset


class MethodFilter(admin.SimpleListFilter):
    """HTTP methods as fixed choices (never SELECT DISTINCT over the call log)."""

    title = "method"
    parameter_name = "method"

    def lookups(self, request, model_admin):
        return [(m, m) for m in ("GET", "POST", "PUT", "PATCH", "DELETE")]

    def queryset(self, request, queryset):
        return queryset.filter(method=self.value()) if self.value() else queryset


@admin.register(ApiCall)
class ApiCallAdmin(BoundedListMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "created_at",
        "connection",
        "method",
        "short_path",
        "status",
        "error_kind",
        "duration_ms",
        "attempt",
        "correlation_id",
        "run_ref",
        "quota_remaining",
    ]
    list_filter = [
        "connection",
        StatusClassFilter,
        "error_kind",
        MethodFilter,
        ("created_at", admin.DateFieldListFilter),
    ]
    # exact, indexed lookups: the log holds millions of rows (connectors.admin.scale)
    search_exact = ["correlation_id", "idempotency_key"]
    search_help_text = _("A correlation id or an idempotency key, exactly.")
    list_select_related = ["connection"]

    @admin.display(description=_("path"), ordering="path")
    def short_path(self, obj):
        return truncated(obj.path, 60)

    @admin.display(description=_("Status"), ordering="status_code")
    def status(self, obj):
        """Coloured by class (a 503 never looks like a 200); empty when no answer came."""
        return http_status(obj.status_code, fallback="—")


def calls_link(correlation_id: str):
    """A link to the API calls that carry a correlation id (event, flow run and sync run pages)."""
    from django.urls import reverse
    from django.utils.html import format_html

    url = reverse("admin:connectors_apicall_changelist") + f"?q={correlation_id}"
    return format_html(
        '<a href="{}">{}</a>',
        url,
        _("calls with correlation id %(id)s") % {"id": correlation_id},
    )


def run_calls_link(run_ref: str, count: int):
    """A link to exactly the calls one run made (flow run and sync run pages)."""
    from django.urls import reverse
    from django.utils.html import format_html

    url = reverse("admin:connectors_apicall_changelist") + f"?run_ref={run_ref}"
    words = ngettext("%(n)s call made by this run", "%(n)s calls made by this run", count)
    return format_html('<a href="{}">{}</a>', url, words % {"n": count})
