"""Choices of the connectors app, in one place."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class ServiceKind(models.TextChoices):
    CRM = "crm", _("CRM")
    EMAILING = "emailing", _("Emailing")
    PAYMENT = "payment", _("Payment")
    BOOKING = "booking", _("Booking")
    INVOICING = "invoicing", _("Invoicing")
    SUPPORT = "support", _("Support")
    ANALYTICS = "analytics", _("Analytics")
    OTHER = "other", _("Other")


class Environment(models.TextChoices):
    SANDBOX = "sandbox", _("Sandbox")
    PRODUCTION = "production", _("Production")


class AuthMethod(models.TextChoices):
    NONE = "none", _("None")
    API_KEY_HEADER = "api_key_header", _("API key in a header")
    API_KEY_QUERY = "api_key_query", _("API key in the query string (weaker)")
    BEARER = "bearer", _("Bearer token")
    BASIC = "basic", _("HTTP basic")
    OAUTH2 = "oauth2", _("OAuth 2.0")


class ConnectionStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    PAUSED = "paused", _("Paused")
    REAUTH_REQUIRED = "reauth_required", _("Reauthorisation required")
    FAILING = "failing", _("Failing")
    DISABLED = "disabled", _("Disabled")


class CredentialKind(models.TextChoices):
    API_KEY = "api_key", _("API key")
    BASIC_PASSWORD = "basic_password", _("Basic auth password")
    OAUTH_CLIENT_SECRET = "oauth_client_secret", _("OAuth client secret")
    ACCESS_TOKEN = "access_token", _("Access token")
    REFRESH_TOKEN = "refresh_token", _("Refresh token")
    WEBHOOK_SIGNING_SECRET = "webhook_signing_secret", _("Webhook signing secret")
    OTHER = "other", _("Other")


class CredentialState(models.TextChoices):
    ACTIVE = "active", _("Active")
    RETIRING = "retiring", _("Retiring (rotation overlap)")
    REVOKED = "revoked", _("Revoked")


class AuditAction(models.TextChoices):
    CREDENTIAL_CREATED = "credential_created", _("Credential created")
    CREDENTIAL_REPLACED = "credential_replaced", _("Credential secret replaced")
    CREDENTIAL_RETIRING = "credential_retiring", _("Credential set to retire")
    CREDENTIAL_REVOKED = "credential_revoked", _("Credential revoked")
    CREDENTIAL_DELETED = "credential_deleted", _("Credential deleted")
    FERNET_KEYS_ROTATED = "fernet_keys_rotated", _("Encryption keys rotated")
    PERSONAL_DATA_EXPORTED = "personal_data_exported", _("One person's data exported (GDPR desk)")
    PERSONAL_DATA_ERASED = "personal_data_erased", _("One person's data erased (GDPR desk)")
