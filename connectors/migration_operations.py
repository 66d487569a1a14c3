"""Migration operations the hub's own migrations use."""

from __future__ import annotations

from django.db import migrations

__all__ = ["AddIndexOnline"]


class AddIndexOnline(migrations.AddIndex):
    """``AddIndex`` that does not stop a live hub: on PostgreSQL the index is built with
    ``CREATE INDEX CONCURRENTLY`` (writes to a table of millions of rows go on while it builds;
    the migration must declare ``atomic = False``); elsewhere, a plain ``CREATE INDEX``."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.add_index(model, self.index, concurrently=True)
        else:
            schema_editor.add_index(model, self.index)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        model = from_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.remove_index(model, self.index, concurrently=True)
        else:
            schema_editor.remove_index(model, self.index)

    def describe(self):
        return super().describe() + " (concurrently on PostgreSQL)"
