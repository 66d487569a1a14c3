"""Models of the connectors app."""

from connectors.models.audit import AuditEntry
from connectors.models.connection import Connection
from connectors.models.credential import Credential

__all__ = ["AuditEntry", "Connection", "Credential"]
