"""OAuth 2.0 applications registered at partners."""

from __future__ import annotations

import json

from django.db import models
from django.utils.translation import gettext_lazy as _

from connectors.fields import EncryptedSecretField
from connectors.shapes import sentence

# The settings of an OAuth app a person configures (console form and integrations as code
# alike; the client secret is apart: write-only).
OAUTH_APP_SETTINGS = [
    "grant_type",
    "authorization_url",
    "token_url",
    "revocation_url",
    "userinfo_url",
    "client_id",
    "default_scopes",
    "use_pkce",
    "extra_authorize_params",
    "token_endpoint_auth",
]


# set by the hub itself on the consent URL: an extra parameter may not replace them
RESERVED_AUTHORIZE_PARAMS = (
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
)


def check_authorize_params(params) -> list[str]:
    """Extra consent-URL parameters: names and text values, none the hub sets itself."""
    if not isinstance(params, dict):
        return [_('a JSON object of parameter names and values, e.g. {"access_type": "offline"}')]
    problems = []
    for name, value in params.items():
        if name in RESERVED_AUTHORIZE_PARAMS:
            problems.append(
                _('"%(name)s" is set by the hub itself (the scopes have their own field)')
                % {"name": name}
            )
        elif not isinstance(value, str):
            problems.append(
                _('"%(name)s" is text, not %(value)s: write it in quotes')
                % {"name": name, "value": json.dumps(value)}
            )
    return problems


class OAuthApp(models.Model):
    """An OAuth 2.0 client registered at a partner; several connections (accounts) may share
    it. The client secret is encrypted at rest like every credential and never shown back."""

    class Grant(models.TextChoices):
        AUTHORIZATION_CODE = "authorization_code", _("Authorization code (+ PKCE): a user connects")
        CLIENT_CREDENTIALS = "client_credentials", _("Client credentials: machine to machine")

    class TokenAuth(models.TextChoices):
        BASIC = "client_secret_basic", _("client_secret_basic (HTTP basic)")
        POST = "client_secret_post", _("client_secret_post (in the form body)")

    name = models.CharField(
        max_length=120,
        unique=True,
        help_text=_("e.g. 'HubSpot app (prod)'."),
        verbose_name=_("name"),
    )
    grant_type = models.CharField(
        max_length=30,
        choices=Grant.choices,
        default=Grant.AUTHORIZATION_CODE,
        help_text=_("How tokens are obtained."),
        verbose_name=_("grant type"),
    )
    authorization_url = models.URLField(
        max_length=500,
        blank=True,
        help_text=_("The partner's authorization (consent) endpoint."),
        verbose_name=_("authorization URL"),
    )
    token_url = models.URLField(
        max_length=500, help_text=_("The partner's token endpoint."), verbose_name=_("token URL")
    )
    revocation_url = models.URLField(
        max_length=500,
        blank=True,
        help_text=_("Token revocation endpoint (RFC 7009), if any."),
        verbose_name=_("revocation URL"),
    )
    userinfo_url = models.URLField(
        max_length=500,
        blank=True,
        help_text=_("Optional: tells which account was connected."),
        verbose_name=_("userinfo URL"),
    )
    client_id = models.CharField(
        max_length=300, help_text=_("The client id the partner gave."), verbose_name=_("client ID")
    )
    client_secret = EncryptedSecretField(
        blank=True,
        help_text=_("The client secret, Fernet-encrypted. Write-only."),
        verbose_name=_("client secret"),
    )
    client_secret_fingerprint = models.CharField(
        max_length=60,
        blank=True,
        editable=False,
        help_text=_("What can be shown of the secret."),
        verbose_name=_("client secret fingerprint"),
    )
    default_scopes = models.JSONField(
        default=list,
        blank=True,
        help_text=_("Scopes to request (contacts.read …)."),
        verbose_name=_("default scopes"),
    )
    use_pkce = models.BooleanField(
        default=True, help_text=_("PKCE (S256) on the code flow."), verbose_name=_("use PKCE")
    )
    extra_authorize_params = models.JSONField(
        default=dict,
        blank=True,
        help_text=_('Extra authorization parameters, e.g. {"access_type": "offline"}.'),
        verbose_name=_("extra authorize params"),
    )
    token_endpoint_auth = models.CharField(
        max_length=30,
        choices=TokenAuth.choices,
        default=TokenAuth.BASIC,
        help_text=_("How the client authenticates at the token endpoint."),
        verbose_name=_("token endpoint auth"),
    )
    created_at = models.DateTimeField(
        auto_now_add=True, help_text=_("Created at."), verbose_name=_("created at")
    )
    updated_at = models.DateTimeField(
        auto_now=True, help_text=_("Last changed at."), verbose_name=_("updated at")
    )

    class Meta:
        verbose_name = _("OAuth app")
        verbose_name_plural = _("OAuth apps")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        """The URLs the hub calls pass the SSRF guard now, not at the first refresh; the
        consent URL (opened by a person's browser, not by the hub) needs https only."""
        super().clean()
        from django.conf import settings
        from django.core.exceptions import ValidationError

        from connectors.engine.ssrf import check_endpoint_url

        https = not settings.HUB_OAUTH_ALLOW_HTTP
        errors = {}
        for name in ("token_url", "revocation_url", "userinfo_url", "authorization_url"):
            url = getattr(self, name)
            if not url:
                continue
            try:
                check_endpoint_url(url, require_https=https, resolve=name != "authorization_url")
            except ValueError as exc:
                errors[name] = str(exc)
        if problems := check_authorize_params(self.extra_authorize_params):
            errors["extra_authorize_params"] = sentence(problems)
        if errors:
            raise ValidationError(errors)
