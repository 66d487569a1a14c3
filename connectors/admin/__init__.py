"""The operator console for connections, credentials and the audit trail."""

from connectors.admin.audit import AuditEntryAdmin
from connectors.admin.connection import ConnectionAdmin
from connectors.admin.credential import CredentialAdmin

__all__ = ["AuditEntryAdmin", "ConnectionAdmin", "CredentialAdmin"]
