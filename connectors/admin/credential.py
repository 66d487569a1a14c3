"""Credentials in the console: write-only secrets, audited changes, never a plaintext."""

from django.contrib import admin, messages
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables

from connectors.admin.confirm import confirmation, confirmed
from connectors.forms import CredentialForm
from connectors.models import Credential
from connectors.services.credentials import (
    create_credential,
    replace_secret,
    revoke_credential,
)


@admin.register(Credential)
class CredentialAdmin(admin.ModelAdmin):
    """Only integration admins reach these pages (the other roles have no credential
    permission, so Django answers 403). Even they never see a secret: the form's secret box
    is empty on every render and the pages show fingerprints."""

    form = CredentialForm
    list_display = [
        "__str__",
        "connection",
        "kind",
        "fingerprint",
        "state",
        "expires_at",
        "readability",
        "created_at",
    ]
    list_filter = ["state", "kind", "connection"]
    search_fields = ["label", "connection__name", "connection__slug"]
    list_select_related = ["connection"]
    readonly_fields = [
        "fingerprint",
        "readability",
        "state",
        "rotated_at",
        "revoked_at",
        "created_by",
        "created_at",
        "updated_at",
    ]
    actions = ["revoke_selected"]

    def get_fieldsets(self, request, obj=None):
        main = ["connection", "kind", "label", "secret"]
        if obj is not None:
            main = ["connection", "kind", "label", "fingerprint", "readability", "secret"]
        return [
            (None, {"fields": main}),
            (
                _("Lifecycle"),
                {
                    "fields": [
                        "state",
                        "expires_at",
                        "rotate_by",
                        "rotated_at",
                        "revoked_at",
                        "created_by",
                        "created_at",
                        "updated_at",
                    ]
                },
            ),
        ]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:
            # A secret belongs to its connection and kind for life: moving it would be a
            # silent re-use, so that takes a new credential.
            return [*self.readonly_fields, "connection", "kind"]
        return self.readonly_fields

    def get_actions(self, request):
        actions = super().get_actions(request)
        # Deleting would erase the audit trail's subject; revoke instead.
        actions.pop("delete_selected", None)
        return actions

    @method_decorator(sensitive_post_parameters("secret"))
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        return super().changeform_view(request, object_id, form_url, extra_context)

    @admin.display(description=_("Readable"))
    def readability(self, obj):
        if obj.readable:
            return _("yes")
        return format_html(
            '<strong class="hub-status hub-error">{}</strong>',
            _("unreadable: encryption key missing"),
        )

    @method_decorator(sensitive_variables("secret"))
    def save_model(self, request, obj, form, change):
        secret = form.cleaned_data.get("secret") or ""
        if not change:
            create_credential(
                form.cleaned_data["connection"],
                form.cleaned_data["kind"],
                secret,
                actor=request.user,
                label=obj.label,
                expires_at=obj.expires_at,
                rotate_by=obj.rotate_by,
                instance=obj,
            )
            return
        obj.save(update_fields=["label", "expires_at", "rotate_by", "updated_at"])
        if secret:
            replace_secret(obj, secret, actor=request.user)

    def delete_model(self, request, obj):
        from connectors.choices import AuditAction
        from connectors.services.credentials import record_audit

        record_audit(
            AuditAction.CREDENTIAL_DELETED,
            actor=request.user,
            connection=obj.connection,
            credential=None,
            detail=f"credential #{obj.pk} {obj.fingerprint}",
        )
        super().delete_model(request, obj)

    @admin.action(
        description=_("Revoke selected credentials (never used again)"), permissions=["change"]
    )
    def revoke_selected(self, request, queryset):
        credentials = list(queryset.select_related("connection"))
        if not confirmed(request):
            return confirmation(
                self,
                request,
                credentials,
                action="revoke_selected",
                title=ngettext(
                    "Revoke %(n)s credential?", "Revoke %(n)s credentials?", len(credentials)
                )
                % {"n": len(credentials)},
                explanation=_(
                    "A revoked credential is never used again and cannot be restored: "
                    "calls that need it fail until a new one is added. Revoke it at the partner "
                    "too if it may have leaked."
                ),
                button=_("Yes, revoke"),
                items=[
                    f"{c.connection.slug}: {c.get_kind_display()} {c.fingerprint}"
                    for c in credentials
                ],
            )
        count = 0
        for credential in credentials:
            revoke_credential(credential, actor=request.user, reason="revoked from the console")
            count += 1
        self.message_user(
            request,
            ngettext("%(n)s credential revoked.", "%(n)s credentials revoked.", count)
            % {"n": count},
            messages.SUCCESS,
        )
