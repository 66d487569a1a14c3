"""Re-encrypting every stored secret under the primary Fernet key.

Works on the raw ciphertext (it never builds a plaintext string in Python), batch by batch, in
primary-key order, each batch in its own transaction. A value already under the primary key is
left alone, so running it twice changes nothing the second time. After a run that reports no
``unreadable`` value, every key but the first can be removed from ``FERNET_KEYS``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.fernet import InvalidToken
from django.apps import apps
from django.db import connection as default_connection
from django.db import transaction
from fernet_fields import EncryptedField

from connectors.secrets import current_fernet, primary_fernet

__all__ = ["RotationReport", "encrypted_columns", "rotate_fernet_keys"]


@dataclass
class RotationReport:
    """Counts of one rotation run, per ``app_label.Model.field`` and in total."""

    rotated: int = 0
    already_current: int = 0
    unreadable: int = 0
    per_column: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, column: str, outcome: str) -> None:
        counts = self.per_column.setdefault(
            column, {"rotated": 0, "already_current": 0, "unreadable": 0}
        )
        counts[outcome] += 1
        setattr(self, outcome, getattr(self, outcome) + 1)


def encrypted_columns():
    """Every (model, field) pair in the project that stores Fernet ciphertext."""
    for model in apps.get_models():
        for model_field in model._meta.concrete_fields:
            if isinstance(model_field, EncryptedField):
                yield model, model_field


def _rotate_column(model, model_field, report: RotationReport, batch_size: int) -> None:
    conn = default_connection
    qn = conn.ops.quote_name
    table, pk_col = qn(model._meta.db_table), qn(model._meta.pk.column)
    column = qn(model_field.column)
    label = f"{model._meta.label}.{model_field.name}"
    primary, everyone = primary_fernet(), current_fernet()
    last_pk = None
    while True:
        with transaction.atomic(), conn.cursor() as cursor:
            # Raw SQL because the ORM cannot say it: an encrypted field decrypts on every load
            # (values() and only() included), and this must read and write the ciphertext.
            # Identifiers come from the model's metadata (Django's documented Model _meta
            # API), quoted by the backend; values are parameters. Nothing comes from a user.
            where = "" if last_pk is None else f"WHERE {pk_col} > %s "
            cursor.execute(
                f"SELECT {pk_col}, {column} FROM {table} {where}"  # noqa: S608
                f"ORDER BY {pk_col} LIMIT %s",
                ([] if last_pk is None else [last_pk]) + [batch_size],
            )
            rows = cursor.fetchall()
            if not rows:
                return
            updates = []
            for pk, raw in rows:
                last_pk = pk
                if raw is None:
                    continue
                token = bytes(raw)
                try:
                    primary.decrypt(token)
                except InvalidToken:
                    pass
                else:
                    report.add(label, "already_current")
                    continue
                try:
                    updates.append((conn.Database.Binary(everyone.rotate(token)), pk))
                except InvalidToken:
                    report.add(label, "unreadable")
                    continue
                report.add(label, "rotated")
            if updates:
                cursor.executemany(
                    f"UPDATE {table} SET {column} = %s WHERE {pk_col} = %s",  # noqa: S608
                    updates,
                )


def rotate_fernet_keys(batch_size: int = 500) -> RotationReport:
    """Re-encrypt every encrypted column under ``FERNET_KEYS[0]``; return the counts."""
    report = RotationReport()
    for model, model_field in encrypted_columns():
        _rotate_column(model, model_field, report, batch_size)
    return report
