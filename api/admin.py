"""API tokens in the console: created with their scopes, the token shown once, then only its
first characters; revoked with an action."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from api.models import SCOPES, ApiToken


class ApiTokenForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=[(name, f"{name}: {text}") for name, text in SCOPES.items()],
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Give each token only what its user needs."),
    )

    class Meta:
        model = ApiToken
        fields = ["name", "scopes", "expires_at"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    form = ApiTokenForm
    list_display = [
        "name",
        "prefix",
        "scopes",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
    ]
    readonly_fields = ["prefix", "created_by", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name", "scopes", "expires_at"]
        return ["name", "prefix", "scopes", "expires_at", *self.readonly_fields[1:]]

    def save_model(self, request, obj, form, change):
        if change:
            obj.scopes = sorted(form.cleaned_data["scopes"])
            super().save_model(request, obj, form, change)
            return
        row, token = ApiToken.issue(
            obj.name,
            form.cleaned_data["scopes"],
            created_by=request.user,
            expires_at=obj.expires_at,
        )
        obj.pk, obj.prefix = row.pk, row.prefix
        # shown once, to the admin who created it; the hub keeps only its digest
        self.message_user(
            request,
            _("Token for %(name)s: %(token)s — copy it now, it will not be shown again.")
            % {"name": row.name, "token": token},
            messages.WARNING,
        )

    @admin.action(description=_("Revoke the selected tokens"), permissions=["change"])
    def revoke(self, request, queryset):
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(
            request,
            ngettext("%(n)s token revoked.", "%(n)s tokens revoked.", count) % {"n": count},
            messages.SUCCESS,
        )
