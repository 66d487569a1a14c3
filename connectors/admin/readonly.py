"""Records the hub writes itself (call log, audit trail, webhook events): nobody adds, edits or
deletes them from the console."""


class ReadOnlyAdminMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
