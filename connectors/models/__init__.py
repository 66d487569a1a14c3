"""Models of the connectors app."""

from connectors.models.audit import AuditEntry
from connectors.models.calls import (
    ApiCall,
    ErrorKind,
    IdempotencyRecord,
    IdempotencyState,
    RateLimitBucket,
)
from connectors.models.connection import Connection
from connectors.models.credential import Credential
from connectors.models.oauth import OAuthApp

__all__ = [
    "ApiCall",
    "AuditEntry",
    "Connection",
    "Credential",
    "ErrorKind",
    "IdempotencyRecord",
    "IdempotencyState",
    "OAuthApp",
    "RateLimitBucket",
]
