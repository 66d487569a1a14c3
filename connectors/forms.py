"""Forms of the operator console. Secrets are write-only: no form ever renders one back."""

from django import forms
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables

from connectors.models import Credential
from connectors.services.credentials import CredentialError, check_secret


class SecretInput(forms.PasswordInput):
    """A password box that never renders a value, whatever the form's initial data holds."""

    def __init__(self, attrs=None):
        base = {"autocomplete": "new-password", "spellcheck": "false"}
        super().__init__(attrs={**base, **(attrs or {})}, render_value=False)


class CredentialForm(forms.ModelForm):
    """Add a credential (the secret is required) or replace its secret (blank keeps it)."""

    secret = forms.CharField(
        label=_("Secret"),
        required=False,
        strip=False,
        widget=SecretInput(),
        help_text=_(
            "Paste the secret. It is encrypted at once and never shown again; only its "
            "fingerprint is. On an existing credential, leave empty to keep the current secret."
        ),
    )

    class Meta:
        model = Credential
        fields = ["connection", "kind", "label", "expires_at", "rotate_by"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is None:
            self.fields["secret"].required = True
        else:
            self.fields["secret"].label = _("Replace secret")

    @sensitive_variables("secret")
    def clean_secret(self):
        secret = self.cleaned_data.get("secret", "")
        if not secret:
            return ""
        try:
            return check_secret(secret)
        except CredentialError as exc:
            raise forms.ValidationError(str(exc)) from None
