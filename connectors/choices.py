"""Choices of the connectors app, in one place."""

from django.db import models


class ServiceKind(models.TextChoices):
    CRM = "crm", "CRM"
    EMAILING = "emailing", "Emailing"
    PAYMENT = "payment", "Payment"
    BOOKING = "booking", "Booking"
    INVOICING = "invoicing", "Invoicing"
    SUPPORT = "support", "Support"
    ANALYTICS = "analytics", "Analytics"
    OTHER = "other", "Other"


class Environment(models.TextChoices):
    SANDBOX = "sandbox", "Sandbox"
    PRODUCTION = "production", "Production"


class AuthMethod(models.TextChoices):
    NONE = "none", "None"
    API_KEY_HEADER = "api_key_header", "API key in a header"
    API_KEY_QUERY = "api_key_query", "API key in the query string (weaker)"
    BEARER = "bearer", "Bearer token"
    BASIC = "basic", "HTTP basic"
    OAUTH2 = "oauth2", "OAuth 2.0"


class ConnectionStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    REAUTH_REQUIRED = "reauth_required", "Reauthorisation required"
    FAILING = "failing", "Failing"
    DISABLED = "disabled", "Disabled"


class CredentialKind(models.TextChoices):
    API_KEY = "api_key", "API key"
    BASIC_PASSWORD = "basic_password", "Basic auth password"
    OAUTH_CLIENT_SECRET = "oauth_client_secret", "OAuth client secret"
    ACCESS_TOKEN = "access_token", "Access token"
    REFRESH_TOKEN = "refresh_token", "Refresh token"
    WEBHOOK_SIGNING_SECRET = "webhook_signing_secret", "Webhook signing secret"
    OTHER = "other", "Other"


class CredentialState(models.TextChoices):
    ACTIVE = "active", "Active"
    RETIRING = "retiring", "Retiring (rotation overlap)"
    REVOKED = "revoked", "Revoked"


class AuditAction(models.TextChoices):
    CREDENTIAL_CREATED = "credential_created", "Credential created"
    CREDENTIAL_REPLACED = "credential_replaced", "Credential secret replaced"
    CREDENTIAL_RETIRING = "credential_retiring", "Credential set to retire"
    CREDENTIAL_REVOKED = "credential_revoked", "Credential revoked"
    CREDENTIAL_DELETED = "credential_deleted", "Credential deleted"
    FERNET_KEYS_ROTATED = "fernet_keys_rotated", "Encryption keys rotated"
    PERSONAL_DATA_EXPORTED = "personal_data_exported", "One person's data exported (GDPR desk)"
    PERSONAL_DATA_ERASED = "personal_data_erased", "One person's data erased (GDPR desk)"
