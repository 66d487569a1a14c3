"""The console's monitoring pages: incidents (acknowledge, ignore, retry all), notification
channels (send test), rule settings, and the record of every notification."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from connectors.admin.columns import truncated, when
from connectors.admin.confirm import confirmation, confirmed
from connectors.admin.fields import StructuredFieldsMixin
from connectors.admin.readonly import ReadOnlyAdminMixin
from connectors.admin.status import status
from monitoring.models import Channel, Incident, Notification, RuleSetting
from monitoring.rules import RULES
from monitoring.services import affected, incidents, notify


class RuleFilter(admin.SimpleListFilter):
    """The rules of the registry (no DISTINCT over the table)."""

    title = "rule"
    parameter_name = "rule"

    def lookups(self, request, model_admin):
        return [(key, rule.title) for key, rule in sorted(RULES.items())]

    def queryset(self, request, queryset):
        return queryset.filter(rule=self.value()) if self.value() else queryset


@admin.register(Incident)
class IncidentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    change_form_template = "admin/monitoring/incident/change_form.html"
    list_display = (
        "state_badge",
        "severity_badge",
        "short_summary",
        "target_label",
        "opened_at",
        "last_seen_at",
        "occurrences",
        "acknowledged_by",
    )
    list_display_links = ("short_summary",)
    list_filter = ("state", "severity", RuleFilter)
    list_select_related = ("acknowledged_by",)
    search_fields = ("=key",)
    actions = ("acknowledge_selected", "ignore_selected")
    show_full_result_count = False
    fields = (
        "state_badge",
        "severity_badge",
        "summary",
        "advice",
        "target_label",
        "rule",
        "error_class",
        "level",
        "first_seen_at",
        "opened_at",
        "last_seen_at",
        "resolved_at",
        "occurrences",
        "times_opened",
        "acknowledged_by",
        "acknowledged_at",
        "notified_at",
        "affected_events",
        "affected_calls",
        "timeline",
    )
    readonly_fields = fields

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("monitoring.view_incident")

    def has_manage_permission(self, request):
        return request.user.has_perm("monitoring.manage_incident")

    @admin.display(description=_("state"), ordering="state")
    def state_badge(self, obj):
        return status("incident", obj.state, obj.get_state_display())

    @admin.display(description=_("severity"), ordering="severity")
    def severity_badge(self, obj):
        return status("severity", obj.severity, obj.get_severity_display())

    @admin.display(description=_("summary"), ordering="summary")
    def short_summary(self, obj):
        return truncated(obj.summary, 100)

    @admin.display(description=_("events waiting because of it"))
    def affected_events(self, obj):
        events = list(affected.affected_events(obj, limit=50))
        if not events:
            return _("None.")
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                '<li><a href="{}">{} {}</a> ({}, {}): {}</li>',
                (
                    (
                        reverse("admin:webhooks_webhookevent_change", args=[e.pk]),
                        e.event_type or _("event"),
                        e.event_id,
                        e.endpoint.slug,
                        e.get_status_display(),
                        e.last_error[:120],
                    )
                    for e in events
                ),
            ),
        )

    @admin.display(description=_("failed calls"))
    def affected_calls(self, obj):
        calls = list(affected.affected_calls(obj))
        if not calls:
            return _("None.")
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                '<li><a href="{}">{} {} {}</a> → {} {}</li>',
                (
                    (
                        reverse("admin:connectors_apicall_change", args=[c.pk]),
                        when(c.created_at),
                        c.method,
                        c.path,
                        c.status_code or c.error_kind,
                        c.error_message[:120],
                    )
                    for c in calls
                ),
            ),
        )

    @admin.display(description=_("notifications"))
    def timeline(self, obj):
        rows = obj.notifications.select_related("channel")[:50]
        if not rows:
            return _("None sent.")
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                "<li>{} {} → {}: {} {}</li>",
                (
                    (
                        when(n.created_at),
                        n.get_kind_display(),
                        n.channel,
                        n.get_status_display(),
                        n.error,
                    )
                    for n in rows
                ),
            ),
        )

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "can_manage": self.has_manage_permission(request)}
        return super().changeform_view(request, object_id, form_url, extra_context)

    # -- actions ---------------------------------------------------------------------------
    @admin.action(description=_("Acknowledge (I am on it)"))
    def acknowledge_selected(self, request, queryset):
        if not self.has_manage_permission(request):
            raise PermissionDenied
        for incident in queryset:
            incidents.acknowledge(incident, request.user)
        self.message_user(request, _("Acknowledged."), messages.SUCCESS)

    @admin.action(description=_("Ignore (known; do not notify if it returns)"))
    def ignore_selected(self, request, queryset):
        if not self.has_manage_permission(request):
            raise PermissionDenied
        for incident in queryset:
            incidents.ignore(incident, request.user)
        self.message_user(request, _("Ignored."), messages.SUCCESS)

    # -- buttons on the incident page ------------------------------------------------------
    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/acknowledge/",
                wrap(self.state_view),
                {"change": "acknowledge"},
                name="monitoring_incident_acknowledge",
            ),
            path(
                "<path:object_id>/ignore/",
                wrap(self.state_view),
                {"change": "ignore"},
                name="monitoring_incident_ignore",
            ),
            path(
                "connection/<int:connection_id>/charts/",
                wrap(self.charts_view),
                name="monitoring_connection_charts",
            ),
            path(
                "<path:object_id>/retry-all/",
                wrap(self.retry_all_view),
                name="monitoring_incident_retry_all",
            ),
            *super().get_urls(),
        ]

    def charts_view(self, request, connection_id):
        """A connection's volume, errors and latency over 24 h and 7 days, from the rollups."""
        from django.shortcuts import get_object_or_404
        from django.template.response import TemplateResponse
        from django.utils import timezone

        from connectors.models import Connection
        from monitoring.services.series import call_series

        if not request.user.has_perm("connectors.view_connection"):
            raise PermissionDenied
        connection = get_object_or_404(Connection, pk=connection_id)
        now = timezone.now()
        day = call_series([connection.pk], now, hours=24, step_minutes=15)
        week = call_series([connection.pk], now, hours=7 * 24, step_minutes=60)
        return TemplateResponse(
            request,
            "monitoring/connection_charts.html",
            {
                **self.admin_site.each_context(request),
                "title": _("%(name)s: calls, errors and latency") % {"name": connection.name},
                "connection": connection,
                "day": day,
                "week": week,
            },
        )

    def _incident_or_403(self, request, object_id) -> Incident:
        if request.method != "POST" or not self.has_manage_permission(request):
            raise PermissionDenied
        incident = self.get_object(request, object_id)
        if incident is None:
            raise PermissionDenied
        return incident

    def _back(self, incident):
        return HttpResponseRedirect(reverse("admin:monitoring_incident_change", args=[incident.pk]))

    def state_view(self, request, object_id, change):
        incident = self._incident_or_403(request, object_id)
        if change == "acknowledge":
            incidents.acknowledge(incident, request.user)
            self.message_user(request, _("Acknowledged: it is yours."), messages.SUCCESS)
        else:
            incidents.ignore(incident, request.user)
            self.message_user(request, _("Ignored: no message if it returns."), messages.SUCCESS)
        return self._back(incident)

    def retry_all_view(self, request, object_id):
        incident = self._incident_or_403(request, object_id)
        events = list(affected.affected_events(incident, limit=10_000))
        if not confirmed(request):
            return confirmation(
                self,
                request,
                Incident.objects.filter(pk=incident.pk),
                action="",
                title=_("Retry every event of this incident?"),
                explanation=ngettext(
                    "%(n)s event will be queued at once. Its effects are idempotent: what "
                    "already reached a partner is not done twice.",
                    "%(n)s events will be queued at once. Their effects are idempotent: what "
                    "already reached a partner is not done twice.",
                    len(events),
                )
                % {"n": len(events)},
                button=_("Retry them"),
                items=[f"{e.event_type or _('event')} {e.event_id}" for e in events[:100]],
            )
        count = affected.retry_all(incident, actor=request.user)
        self.message_user(
            request,
            ngettext("%(n)s event queued for retry.", "%(n)s events queued for retry.", count)
            % {"n": count},
            messages.SUCCESS,
        )
        return self._back(incident)


@admin.register(Channel)
class ChannelAdmin(StructuredFieldsMixin, admin.ModelAdmin):
    json_examples = {"rules": '["error_rate", "expiry"]'}
    change_form_template = "admin/monitoring/channel/change_form.html"
    list_display = (
        "name",
        "kind",
        "enabled",
        "digest",
        "last_sent_at",
        "consecutive_failures",
        "last_error",
    )
    list_select_related = ("connection",)
    readonly_fields = (
        "last_sent_at",
        "last_failure_at",
        "last_error",
        "consecutive_failures",
        "recent_notifications",
    )
    filter_horizontal = ("connections",)
    actions = ("send_test_selected",)

    @admin.display(description=_("latest notifications"))
    def recent_notifications(self, obj):
        rows = obj.notifications.all()[:20] if obj.pk else []
        if not rows:
            return _("None yet.")
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                "<li>{} {}: {} {} {}</li>",
                (
                    (
                        when(n.created_at),
                        n.get_kind_display(),
                        n.get_status_display(),
                        n.subject,
                        n.error,
                    )
                    for n in rows
                ),
            ),
        )

    @admin.action(description=_("Send test"))
    def send_test_selected(self, request, queryset):
        for channel in queryset:
            self._report(request, channel, notify.send_test(channel))

    def _report(self, request, channel, notification):
        if notification.status == "sent":
            self.message_user(
                request, _("%(channel)s: test sent.") % {"channel": channel}, messages.SUCCESS
            )
        else:
            self.message_user(
                request,
                _("%(channel)s: not sent: %(error)s")
                % {"channel": channel, "error": notification.error},
                messages.ERROR,
            )

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/send-test/",
                wrap(self.send_test_view),
                name="monitoring_channel_send_test",
            ),
            *super().get_urls(),
        ]

    def send_test_view(self, request, object_id):
        channel = self.get_object(request, object_id)
        if request.method != "POST" or channel is None:
            raise PermissionDenied
        if not self.has_change_permission(request, channel):
            raise PermissionDenied
        self._report(request, channel, notify.send_test(channel))
        return HttpResponseRedirect(reverse("admin:monitoring_channel_change", args=[channel.pk]))


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "channel", "kind", "status", "subject", "error")
    list_filter = ("status", "kind")
    list_select_related = ("channel",)
    show_full_result_count = False


@admin.register(RuleSetting)
class RuleSettingAdmin(StructuredFieldsMixin, admin.ModelAdmin):
    json_examples = {"params": '{"percent": 30, "min_count": 20}'}
    list_display = ("rule", "connection", "endpoint", "enabled", "params")
    list_select_related = ("connection", "endpoint")
    autocomplete_fields = ()
    raw_id_fields = ("connection", "endpoint")
