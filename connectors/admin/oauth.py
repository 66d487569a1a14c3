"""OAuth apps in the console: the client secret is write-only, like every credential."""

from django import forms
from django.contrib import admin
from django.db import models
from django.utils.decorators import method_decorator
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables

from connectors.admin.fields import StructuredFieldsMixin
from connectors.choices import AuditAction
from connectors.forms import SecretInput
from connectors.models import OAuthApp
from connectors.models.oauth import OAUTH_APP_SETTINGS
from connectors.secrets import SecretValue, fingerprint
from connectors.services.credentials import record_audit


def _https_urls(field, **kwargs):
    if isinstance(field, models.URLField):
        kwargs.setdefault("assume_scheme", "https")
    return field.formfield(**kwargs)


class OAuthAppForm(forms.ModelForm):
    new_client_secret = forms.CharField(
        label=_("Client secret"),
        required=False,
        strip=True,
        widget=SecretInput(),
        help_text=_(
            "Paste the client secret; it is encrypted and never shown again. Leave empty "
            "to keep the current one."
        ),
    )

    class Meta:
        model = OAuthApp
        formfield_callback = _https_urls
        fields = ["name", *OAUTH_APP_SETTINGS]


@admin.register(OAuthApp)
class OAuthAppAdmin(StructuredFieldsMixin, admin.ModelAdmin):
    form = OAuthAppForm
    scope_fields = ("default_scopes",)
    json_examples = {"extra_authorize_params": '{"access_type": "offline", "prompt": "consent"}'}
    list_display = ["name", "grant_type", "client_id", "client_secret_fingerprint", "use_pkce"]
    search_fields = ["name", "client_id"]
    readonly_fields = ["client_secret_fingerprint", "created_at", "updated_at"]
    # the admin builds its form with its own field callback: say it here too
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    @method_decorator(sensitive_post_parameters("new_client_secret"))
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        return super().changeform_view(request, object_id, form_url, extra_context)

    @method_decorator(sensitive_variables("secret"))
    def save_model(self, request, obj, form, change):
        secret = form.cleaned_data.get("new_client_secret")
        if secret:
            obj.client_secret = SecretValue(secret)
            obj.client_secret_fingerprint = fingerprint(secret)
        super().save_model(request, obj, form, change)
        if secret:
            record_audit(
                AuditAction.CREDENTIAL_REPLACED if change else AuditAction.CREDENTIAL_CREATED,
                actor=request.user,
                detail=f"OAuth app {obj.name!r}: client secret {obj.client_secret_fingerprint}",
            )
