"""The operator console for connections, credentials, the call log and the audit trail."""

from connectors.admin.audit import AuditEntryAdmin
from connectors.admin.calls import ApiCallAdmin
from connectors.admin.connection import ConnectionAdmin
from connectors.admin.credential import CredentialAdmin
from connectors.admin.oauth import OAuthAppAdmin

__all__ = ["ApiCallAdmin", "AuditEntryAdmin", "ConnectionAdmin", "CredentialAdmin", "OAuthAppAdmin"]
