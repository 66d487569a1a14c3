"""Webhooks in the operator console: endpoints for admins; events to inspect and retry."""

from __future__ import annotations

import json
from collections.abc import Callable

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Count, OuterRef, Subquery
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from connectors.admin.calls import calls_link
from connectors.admin.columns import truncated, when
from connectors.admin.depends import DependentFieldsMixin
from connectors.admin.fields import StructuredFieldsMixin
from connectors.admin.readonly import ReadOnlyAdminMixin
from connectors.admin.scale import BoundedListMixin, distinct_values_filter
from connectors.admin.status import status
from connectors.choices import CredentialKind
from connectors.models import Credential
from webhooks.choices import Redaction
from webhooks.models import RECENT_REFUSALS, EventAttempt, WebhookEndpoint, WebhookEvent
from webhooks.models.endpoint import ENDPOINT_SETTINGS
from webhooks.schemes.generic_hmac import EXAMPLE as HMAC_EXAMPLE
from webhooks.services import processing
from webhooks.services.ingest import load_endpoint_config

SETTINGS = dict(ENDPOINT_SETTINGS)

# (label, render(event) -> safe HTML): added by apps that build on webhooks, without webhooks
# importing them (the flows app shows the event's flow runs).
EVENT_LINKS: list[tuple[str, Callable]] = []

RETRY_PERMISSION = "webhooks.retry_webhookevent"


def why_not(event: WebhookEvent) -> str:
    """Why an event cannot run again, in words."""
    if event.redaction == Redaction.RETENTION:
        return _("its body was dropped by the connection's payload retention.")
    if event.redaction == Redaction.ERASURE:
        return _("the personal data in its body was erased (GDPR desk).")
    return _("the event is %(status)s.") % {"status": event.get_status_display().lower()}


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(StructuredFieldsMixin, DependentFieldsMixin, admin.ModelAdmin):
    json_examples = {"scheme_options": HMAC_EXAMPLE}
    list_display = [
        "__str__",
        "connection",
        "scheme_display",
        "enabled",
        "signing_secrets",
        "rejected_count",
        "last_rejection_reason",
        "last_rejection_at",
    ]
    list_filter = ["enabled", "scheme", "unsigned"]
    # the generic HMAC scheme's options only for it (the other schemes take none)
    field_depends = ("scheme", {"scheme_options": ["hmac"]})
    search_fields = ["slug", "connection__name", "connection__slug"]
    list_select_related = ["connection"]
    readonly_fields = [
        "url",
        "secret_status",
        "rejected_count",
        "last_rejection_reason",
        "last_rejection_at",
        "recent_refusals",
        "created_at",
        "updated_at",
    ]
    fieldsets = [
        # the settings come from the model's list (integrations as code reads the same one)
        (None, {"fields": [*SETTINGS[None], "url"]}),
        (_("Verification"), {"fields": [*SETTINGS["Verification"], "secret_status"]}),
        (_("Delivery"), {"fields": SETTINGS["Delivery"]}),
        (
            _("Refusals"),
            {
                "fields": [
                    "rejected_count",
                    "last_rejection_reason",
                    "last_rejection_at",
                    "recent_refusals",
                    "created_at",
                    "updated_at",
                ]
            },
        ),
    ]

    @admin.display(description=_("Last refused deliveries"))
    def recent_refusals(self, obj):
        """When, why and from where (never a body, a header or a signature), newest first."""
        if obj is None or obj.pk is None:
            return "—"
        rows = obj.refused.all()[:RECENT_REFUSALS]
        if not rows:
            return _("None refused.")
        return format_html(
            '<table><thead><tr><th scope="col">{}</th><th scope="col">{}</th>'
            '<th scope="col">{}</th><th scope="col">{}</th></tr></thead><tbody>{}</tbody>'
            "</table>",
            _("When"),
            _("Why"),
            _("Reason"),
            _("From"),
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                (
                    (
                        when(r.at),
                        r.get_kind_display(),
                        r.reason,
                        r.source_ip or "?",
                    )
                    for r in rows
                ),
            ),
        )

    @admin.display(description=_("URL"))
    def url(self, obj):
        return f"/webhooks/{obj.slug}/" if obj and obj.slug else "-"

    @admin.display(description=_("Scheme"), ordering="scheme")
    def scheme_display(self, obj):
        if obj.unsigned:
            return format_html(
                '<strong class="hub-status hub-error">{}</strong>',
                _("UNSIGNED: anyone who knows the URL can post"),
            )
        return obj.get_scheme_display()

    def get_queryset(self, request):
        usable = (
            Credential.objects.usable()
            .filter(connection=OuterRef("connection"), kind=CredentialKind.WEBHOOK_SIGNING_SECRET)
            .values("connection")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return super().get_queryset(request).annotate(usable_secrets=Subquery(usable))

    @admin.display(description=_("Signing secrets"))
    def signing_secrets(self, obj):
        """The list's view: counted in the list's one query, never decrypted per row (the
        endpoint's page checks that each can be read)."""
        if obj.unsigned:
            return _("not used (unsigned)")
        if not obj.enabled:
            return _("endpoint disabled")
        if not obj.usable_secrets:
            return format_html(
                '<strong class="hub-status hub-error">{}</strong>',
                _("none usable: every delivery gets 503"),
            )
        return _("%(n)s usable") % {"n": obj.usable_secrets}

    @admin.display(description=_("Signing secret"))
    def secret_status(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        if obj.unsigned:
            return _("not used (unsigned)")
        config = load_endpoint_config(obj.slug) if obj.enabled else None
        if config is None:
            return _("endpoint disabled")
        if config.secret_problem:
            return format_html(
                '<strong class="hub-status hub-error">{}</strong>',
                _("%(problem)s: every delivery gets 503") % {"problem": config.secret_problem},
            )
        fingerprints = ", ".join(fp for _kind, fp in config.secrets)
        return _("%(n)s usable (%(fingerprints)s)") % {
            "n": len(config.secrets),
            "fingerprints": fingerprints,
        }


class EventAttemptInline(admin.TabularInline):
    model = EventAttempt
    extra = 0
    can_delete = False
    fields = ["number", "started_at", "duration_ms", "outcome", "error"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(WebhookEvent)
class WebhookEventAdmin(BoundedListMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Events are the record of what partners sent: read-only; retention purges them. The list
    stays fast at millions of rows (connectors.admin.scale): no bodies loaded, a bounded count,
    exact search, filters that never scan the table."""

    list_display = [
        "received_at",
        "endpoint",
        "event_type",
        "event_id",
        "status_badge",
        "attempts",
        "short_error",
        "next_attempt_at",
    ]
    list_filter = [
        "status",
        "endpoint",
        distinct_values_filter("event_type", _("event type")),
        ("received_at", admin.DateFieldListFilter),
    ]
    search_exact = ["event_id", "correlation_id"]
    search_help_text = _(
        "An event id or a correlation id, exactly as the partner or the hub wrote it."
    )
    list_defer = ["body", "headers", "resolution_note", "verified_by", "source_ip"]
    list_select_related = ["endpoint"]
    inlines = [EventAttemptInline]
    actions = ["retry_selected", "resolve_selected"]
    change_form_template = "admin/webhooks/webhookevent/change_form.html"
    fields = [
        "endpoint",
        "event_id",
        "event_type",
        "status",
        "attempts",
        "next_attempt_at",
        "lease_until",
        "received_at",
        "processed_at",
        "last_error",
        "resolution_note",
        "redaction",
        "redacted_at",
        "verified_by",
        "source_ip",
        "correlation_id",
        "api_calls",
        "related",
        "pretty_headers",
        "pretty_body",
    ]
    readonly_fields = fields

    def has_retry_permission(self, request):
        return request.user.has_perm(RETRY_PERMISSION)

    @admin.display(description=_("Status"), ordering="status")
    def status_badge(self, obj):
        return status("event", obj.status, obj.get_status_display())

    @admin.display(description=_("Last error"))
    def short_error(self, obj):
        return truncated(obj.last_error, 80)

    @admin.display(description=_("Headers (secrets redacted)"))
    def pretty_headers(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.headers, indent=2, sort_keys=True))

    @admin.display(description=_("Body"))
    def pretty_body(self, obj):
        if obj.redaction == Redaction.RETENTION:
            return _(
                "Dropped on %(date)s by the connection's payload retention (its metadata is kept)."
            ) % {"date": when(obj.redacted_at)}
        payload = obj.payload()
        text = (
            json.dumps(payload, indent=2, ensure_ascii=False)
            if payload is not None
            else bytes(obj.body).decode("utf-8", errors="replace")
        )
        return format_html("<pre>{}</pre>", text[:200_000])

    @admin.display(description=_("What it started"))
    def related(self, obj):
        """Links other apps add to the event page (the flows app: the event's flow runs)."""
        parts = [format_html("{}: {}", label, render(obj)) for label, render in EVENT_LINKS]
        return format_html_join(mark_safe("<br>"), "{}", ((p,) for p in parts)) if parts else "—"

    @admin.display(description=_("API calls made for it"))
    def api_calls(self, obj):
        return calls_link(obj.correlation_id)

    # -- actions ---------------------------------------------------------------------------
    @admin.action(description=_("Retry now"), permissions=["retry"])
    def retry_selected(self, request, queryset):
        with transaction.atomic():
            count = sum(processing.retry_now(e, actor=request.user) for e in queryset)
        skipped = queryset.count() - count
        queued = ngettext(
            "%(n)s event queued for retry.", "%(n)s events queued for retry.", count
        ) % {"n": count}
        if skipped:
            queued += " " + ngettext(
                "%(n)s skipped (processed, processing or rejected).",
                "%(n)s skipped (processed, processing or rejected).",
                skipped,
            ) % {"n": skipped}
        self.message_user(request, queued, messages.SUCCESS)

    @admin.action(description=_("Mark resolved (a person dealt with it)"), permissions=["retry"])
    def resolve_selected(self, request, queryset):
        if request.POST.get("reason") is None:
            return TemplateResponse(
                request,
                "admin/webhooks/webhookevent/resolve.html",
                {
                    **self.admin_site.each_context(request),
                    "events": queryset,
                    "opts": self.opts,
                    "title": _("Mark events resolved"),
                },
            )
        reason = request.POST["reason"].strip()
        if not reason:
            self.message_user(request, _("Give a reason to resolve events."), messages.ERROR)
            return None
        count = sum(
            processing.mark_resolved(e, reason=reason, actor=request.user) for e in queryset
        )
        self.message_user(
            request,
            ngettext("%(n)s event marked resolved.", "%(n)s events marked resolved.", count)
            % {"n": count},
            messages.SUCCESS,
        )
        return None

    # -- buttons on the event page ---------------------------------------------------------
    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/retry/", wrap(self.retry_view), name="webhooks_event_retry"),
            path("<path:object_id>/replay/", wrap(self.replay_view), name="webhooks_event_replay"),
            *super().get_urls(),
        ]

    def _event_or_403(self, request, object_id):
        from django.core.exceptions import PermissionDenied

        if request.method != "POST" or not self.has_retry_permission(request):
            raise PermissionDenied
        event = self.get_object(request, object_id)
        if event is None:
            raise PermissionDenied
        return event

    def retry_view(self, request, object_id):
        event = self._event_or_403(request, object_id)
        if processing.retry_now(event, actor=request.user):
            self.message_user(request, _("Queued for retry now."), messages.SUCCESS)
        else:
            self.message_user(
                request, _("Not retried: %(why)s") % {"why": why_not(event)}, messages.WARNING
            )
        return HttpResponseRedirect(reverse("admin:webhooks_webhookevent_change", args=[event.pk]))

    def replay_view(self, request, object_id):
        event = self._event_or_403(request, object_id)
        if request.POST.get("confirm") != "yes":
            return TemplateResponse(
                request,
                "admin/webhooks/webhookevent/replay.html",
                {
                    **self.admin_site.each_context(request),
                    "event": event,
                    "opts": self.opts,
                    "title": _("Replay this event?"),
                },
            )
        if processing.replay(event, actor=request.user):
            self.message_user(request, _("Replay queued."), messages.SUCCESS)
        else:
            self.message_user(
                request,
                why_not(event)
                if event.redaction
                else _("Only processed or resolved events can be replayed."),
                messages.WARNING,
            )
        return HttpResponseRedirect(reverse("admin:webhooks_webhookevent_change", args=[event.pk]))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # actions only where they apply: Retry on what waits or failed, Replay on what is done
        event = self.get_object(request, object_id)
        allowed = self.has_retry_permission(request) and event is not None and not event.redaction
        extra_context = {
            **(extra_context or {}),
            "can_retry": allowed and event.status in processing.RETRYABLE,
            "can_replay": allowed and event.status in processing.REPLAYABLE,
        }
        return super().change_view(request, object_id, form_url, extra_context)
