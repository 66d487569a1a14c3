"""Connections in the console: configuration for admins, a read-only view for the others."""

from collections.abc import Callable
from datetime import timedelta

from django.contrib import admin, messages
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from connectors.admin.columns import when
from connectors.admin.confirm import confirmation, confirmed
from connectors.admin.depends import DependentFieldsMixin
from connectors.admin.fields import StructuredFieldsMixin
from connectors.admin.status import status
from connectors.choices import AuthMethod, ConnectionStatus, CredentialState
from connectors.engine.circuit import circuit_state
from connectors.engine.circuit import reset as reset_circuit
from connectors.models import ApiCall, Connection, Credential
from connectors.models.connection import CONNECTION_SETTINGS
from connectors.oauth.flow import disconnect
from connectors.oauth.scopes import broad_scopes
from connectors.services.health import check_connection

SETTINGS = dict(CONNECTION_SETTINGS)


# render(connection) -> safe HTML or "": panels other apps add to the connection page.
CONNECTION_PANELS: list[Callable] = []
# Columns other apps add to the connection list (monitoring's health), and what they add to its
# query (an annotation: the list stays at a fixed number of queries), without connectors
# importing them.
LIST_COLUMNS: list[Callable] = []
LIST_QUERYSET_HOOKS: list[Callable] = []


class CredentialInline(admin.TabularInline):
    """The connection's credentials, by fingerprint. Shown only to users who may view
    credentials (Django hides inlines without the view permission)."""

    model = Credential
    verbose_name_plural = _("Secrets, by fingerprint")
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ["kind", "label", "fingerprint", "condition", "expires_at", "created_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False  # secrets are added on the credential page, with its write-only form

    @admin.display(description=_("State"))
    def condition(self, obj):
        return credential_badge(obj)


EXPIRY_WARNING = timedelta(days=14)


def credential_condition(credential: Credential, now=None) -> tuple[str, str]:
    """What a person needs to know of one credential: (tone key, words). Unreadable (its key
    is gone) and expired come first: the hub cannot use it, whatever its state says."""
    now = now or timezone.now()
    if not credential.readable:
        return "unreadable", _("Unreadable: its encryption key is missing")
    if credential.state == CredentialState.REVOKED:
        return "revoked", credential.get_state_display()
    if credential.expires_at and credential.expires_at <= now:
        return "expired", _("Expired %(date)s") % {"date": f"{credential.expires_at:%Y-%m-%d}"}
    if credential.expires_at and credential.expires_at - now <= EXPIRY_WARNING:
        return "expiring", _("Expires %(date)s") % {"date": f"{credential.expires_at:%Y-%m-%d}"}
    if credential.state == CredentialState.RETIRING:
        return "retiring", credential.get_state_display()
    return "active", credential.get_state_display()


def credential_badge(credential: Credential):
    value, words = credential_condition(credential)
    return status("credential", value, words)


OAUTH = ["oauth2"]  # the fields and panels only OAuth connections use


@admin.register(Connection)
class ConnectionAdmin(StructuredFieldsMixin, DependentFieldsMixin, admin.ModelAdmin):
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
    readonly_fields = [
        "status_changed_at",
        "created_at",
        "updated_at",
        "credentials_link",
        "credentials_state",
        "circuit",
        "last_quota",
        "api_lifecycle",
        "oauth_connect",
        "scopes_side_by_side",
        "oauth_account",
        "work_on_it",
    ]
    actions = ["test_connections", "reset_circuits", "disconnect_accounts"]
    change_form_template = "admin/connectors/connection/change_form.html"
    scope_fields = ("requested_scopes", "granted_scopes")
    field_depends = (
        "auth_method",
        {
            "api_key_header_name": ["api_key_header"],
            "api_key_query_param": ["api_key_query"],
            "basic_username": ["basic"],
            "requested_scopes": OAUTH,
            "granted_scopes": OAUTH,
            "oauth_app": OAUTH,
            "token_refresh_margin_seconds": OAUTH,
            "oauth_connect": OAUTH,
            "oauth_account": OAUTH,
            "scopes_side_by_side": OAUTH,
        },
    )
    inlines = [CredentialInline]
    # the settings come from the model's list (integrations as code reads the same one); the
    # read-only panels go beside them
    fieldsets = [
        (None, {"fields": SETTINGS[None]}),
        # second, with the credentials' table right under it (the change form's template)
        (_("Credentials"), {"fields": ["credentials_state", "credentials_link"]}),
        (_("Status"), {"fields": ["status", "status_reason", "status_changed_at", "work_on_it"]}),
        (
            _("API"),
            {
                "fields": [
                    *SETTINGS["API"],
                    "granted_scopes",
                    "api_lifecycle",
                    "oauth_connect",
                    "oauth_account",
                    "scopes_side_by_side",
                ]
            },
        ),
        (_("Reliability"), {"fields": [*SETTINGS["Reliability"], "last_quota", "circuit"]}),
        (_("GDPR"), {"fields": SETTINGS["GDPR"]}),
        (_("Notes"), {"fields": [*SETTINGS["Notes"], "created_at", "updated_at"]}),
    ]

    def get_fieldsets(self, request, obj=None):
        """No link that leads a role to a page it cannot open: "Add a credential" only for
        those who may add one."""
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.has_perm("connectors.add_credential"):
            return fieldsets
        return [
            (title, {**opts, "fields": [f for f in opts["fields"] if f != "credentials_link"]})
            for title, opts in fieldsets
        ]

    @admin.display(description=_("Status"), ordering="status")
    def status_badge(self, obj):
        return status("connection", obj.status, obj.get_status_display(), obj.status_reason)

    @admin.display(description=_("Health, checklist and jobs"))
    def work_on_it(self, obj):
        """What other apps run on this connection (the syncs app: its jobs, failing ones in
        red), without connectors importing them."""
        if obj is None or obj.pk is None:
            return "—"
        parts = [html for render in CONNECTION_PANELS if (html := render(obj))]
        return format_html_join(mark_safe("<br>"), "{}", ((p,) for p in parts)) if parts else "—"

    @admin.display(description=_("State"))
    def credentials_state(self, obj):
        """Each kind of secret and whether the hub can use it, for every role: an operator
        who may not open a credential still sees that the key expired."""
        if obj is None or obj.pk is None:
            return "-"
        credentials = list(obj.credentials.all())
        if not credentials and obj.auth_method == AuthMethod.NONE:
            return status(
                "credential", "not_needed", _("None needed: the API asks for no authentication")
            )
        if not credentials:
            return status("credential", "missing", _("None yet: calls cannot authenticate"))
        return format_html_join(
            " ",
            "{} {}",
            (
                (f"{c.get_kind_display()} {c.label}".strip(), credential_badge(c))
                for c in credentials
            ),
        )

    @admin.display(description=_("Add"))
    def credentials_link(self, obj):
        if obj is None or obj.pk is None:
            return _("Save the connection first, then add its credentials.")
        url = reverse("admin:connectors_credential_add") + f"?connection={obj.pk}"
        return format_html(
            '<a href="{}">{}</a> {}',
            url,
            _("Add a credential"),
            _("(secrets are write-only: only their fingerprint is ever shown)"),
        )

    @admin.display(description=_("Circuit breaker"))
    def circuit(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        return circuit_state(obj)

    @admin.display(description=_("Quota reported by the partner"))
    def last_quota(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        row = (
            ApiCall.objects.filter(connection=obj, quota_remaining__isnull=False)
            .only("quota_remaining", "quota_reset_at", "created_at")
            .first()
        )
        if row is None:
            return _("not reported")
        left = _("%(count)s left at %(time)s") % {
            "count": row.quota_remaining,
            "time": when(row.created_at),
        }
        if row.quota_reset_at:
            left += ", " + _("resets %(time)s") % {"time": when(row.quota_reset_at)}
        return left

    @admin.display(description=_("API lifecycle (Deprecation / Sunset)"))
    def api_lifecycle(self, obj):
        if obj is None or not obj.deprecation_seen_at:
            return _("no deprecation signalled")
        return format_html(
            '<strong class="hub-status hub-error">{}</strong> {} {}',
            _("Deprecated: %(deprecation)s · Sunset: %(sunset)s")
            % {"deprecation": obj.deprecation_date or "-", "sunset": obj.sunset_date or "-"},
            _("(first seen %(date)s)") % {"date": f"{obj.deprecation_seen_at:%Y-%m-%d}"},
            format_html('<a href="{}" rel="noreferrer">{}</a>', obj.deprecation_link, _("notes"))
            if obj.deprecation_link
            else "",
        )

    def get_urls(self):
        from django.urls import path

        wrap = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/test/",
                wrap(self.test_view),
                name="connectors_connection_test",
            ),
            *super().get_urls(),
        ]

    def test_view(self, request, object_id):
        """The page's *Test connection* button: one real call, its result on the page."""
        from django.core.exceptions import PermissionDenied
        from django.http import HttpResponseRedirect

        connection = self.get_object(request, object_id)
        if request.method != "POST" or connection is None:
            raise PermissionDenied
        if not self.has_view_permission(request, connection):
            raise PermissionDenied
        self.test_connections(request, Connection.objects.filter(pk=connection.pk))
        return HttpResponseRedirect(
            reverse("admin:connectors_connection_change", args=[connection.pk])
        )

    @admin.action(
        description=_("Test connection (one real call to the health path)"), permissions=["view"]
    )
    def test_connections(self, request, queryset):
        for connection in queryset[:20]:
            result = check_connection(connection)
            level = messages.SUCCESS if result.ok else messages.ERROR
            self.message_user(request, f"{connection.slug}: {result.summary()}", level)

    @admin.action(
        description=_("Close the circuit breaker (after fixing the cause)"), permissions=["change"]
    )
    def reset_circuits(self, request, queryset):
        for connection in queryset:
            reset_circuit(connection)
        count = queryset.count()
        self.message_user(
            request,
            ngettext("%(n)s circuit closed.", "%(n)s circuits closed.", count) % {"n": count},
            messages.SUCCESS,
        )

    @admin.display(description=_("OAuth account"))
    def oauth_connect(self, obj):
        if obj is None or obj.pk is None or obj.auth_method != "oauth2" or obj.oauth_app is None:
            return "-"
        if obj.oauth_app.grant_type != "authorization_code":
            return _("client credentials: tokens are fetched on demand")
        url = reverse("oauth:connect", args=[obj.pk])
        label = _("Reconnect account") if obj.oauth_account else _("Connect account")
        return format_html(
            '<a class="button" href="{}">{}</a> {}',
            url,
            label,
            _("connected as %(account)s") % {"account": obj.oauth_account}
            if obj.oauth_account
            else "",
        )

    @admin.display(description=_("Scopes: requested / granted"))
    def scopes_side_by_side(self, obj):
        if obj is None:
            return "-"
        broad = set(broad_scopes(obj.granted_scopes)) | set(broad_scopes(obj.requested_scopes))
        extra = set(obj.granted_scopes or []) - set(obj.requested_scopes or [])

        def show(scopes):
            return (
                format_html_join(
                    " ",
                    "{}",
                    (
                        (
                            format_html(
                                '<strong class="hub-status hub-error" title="{}">{}</strong>',
                                _("looks like full access")
                                if s in broad
                                else _("granted but not requested"),
                                s,
                            )
                            if s in broad or s in extra
                            else s,
                        )
                        for s in scopes or []
                    ),
                )
                or "-"
            )

        return format_html(
            "{} {}<br>{} {}",
            _("requested:"),
            show(obj.requested_scopes),
            _("granted:"),
            show(obj.granted_scopes),
        )

    @admin.action(
        description=_("Disconnect the OAuth account (revoke at the provider)"),
        permissions=["change"],
    )
    def disconnect_accounts(self, request, queryset):
        oauth = [c for c in queryset.select_related("oauth_app") if c.auth_method == "oauth2"]
        if not oauth:
            self.message_user(request, _("None of these connections uses OAuth."), messages.WARNING)
            return None
        if not confirmed(request):
            return confirmation(
                self,
                request,
                oauth,
                action="disconnect_accounts",
                title=ngettext(
                    "Disconnect %(n)s OAuth account?",
                    "Disconnect %(n)s OAuth accounts?",
                    len(oauth),
                )
                % {"n": len(oauth)},
                explanation=_(
                    "The hub asks each provider to revoke the tokens, then forgets them. "
                    "Calls on these connections fail until someone connects the account again "
                    "(Connections → Connect account), which needs the account owner."
                ),
                button=_("Yes, disconnect and revoke"),
                items=[f"{c.name} ({c.slug})" for c in oauth],
            )
        for connection in oauth:
            outcome = disconnect(connection, actor=request.user)
            self.message_user(
                request,
                _("%(slug)s: disconnected; %(outcome)s.")
                % {"slug": connection.slug, "outcome": outcome},
                messages.SUCCESS,
            )

    def get_list_display(self, request):
        columns = list(super().get_list_display(request))
        return [*columns[:5], *LIST_COLUMNS, *columns[5:]]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        for hook in LIST_QUERYSET_HOOKS:
            queryset = hook(queryset)
        return queryset

    def changelist_view(self, request, extra_context=None):
        waiting = list(
            Connection.objects.filter(status=ConnectionStatus.REAUTH_REQUIRED).values_list(
                "slug", flat=True
            )[:20]
        )
        if waiting and request.method == "GET":
            self.message_user(
                request,
                ngettext(
                    "%(n)s connection needs its account reconnected: %(slugs)s. Calls on it "
                    "fail until then.",
                    "%(n)s connections need their account reconnected: %(slugs)s. Calls on them "
                    "fail until then.",
                    len(waiting),
                )
                % {"n": len(waiting), "slugs": ", ".join(waiting)},
                messages.ERROR,
            )
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        connection = self.get_object(request, object_id)
        if connection is not None and connection.status == "reauth_required":
            self.message_user(
                request,
                _("This connection needs its account reconnected: %(reason)s.")
                % {"reason": connection.status_reason},
                messages.ERROR,
            )
        return super().change_view(request, object_id, form_url, extra_context)
