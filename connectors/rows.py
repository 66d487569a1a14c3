"""Prepared INSERTs and UPDATEs for rows written on the hot path (call rows, flow runs,
idempotency records).

The ORM compiles its SQL on every ``save()``/``create()``; on the engine's and the flows' hot
paths that compilation cost as much as the statement itself. ``insert()`` builds the statement
once per (model, database, row count) from the model's own field list and sends one statement
for any number of rows. Values go through each field's ``pre_save`` and ``get_db_prep_save``,
exactly as ``save()`` would, so defaults, ``auto_now_add`` and JSON fields behave the same.
Signals are not sent (the ORM's ``bulk_create`` does not send them either).
"""

from __future__ import annotations

import functools

from django.db import connections, router
from django.db.models import Model

__all__ = ["insert", "insert_with", "update"]

# Rows per statement; far below SQLite's 32,766 bound parameters for every model here.
CHUNK = 200


@functools.lru_cache(maxsize=128)
def _statement(model: type[Model], alias: str, count: int, returning: bool):
    connection = connections[alias]
    quote = connection.ops.quote_name
    fields = tuple(f for f in model._meta.concrete_fields if not f.primary_key)
    columns = ", ".join(quote(f.column) for f in fields)
    group = "(" + ", ".join(["%s"] * len(fields)) + ")"
    sql = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES "  # noqa: S608
    sql += ", ".join([group] * count)
    if returning:
        sql += f" RETURNING {quote(model._meta.pk.column)}"
    return sql, fields


def _values(objs: list[Model], fields, connection) -> list:
    """The statement's parameters, through ``pre_save`` and ``get_db_prep_save`` (as ``save()``)."""
    return [f.get_db_prep_save(f.pre_save(obj, True), connection) for obj in objs for f in fields]


def _saved(objs: list[Model], alias: str, pks=None) -> None:
    """Mark instances as written to ``alias`` (with their new primary keys when given)."""
    for index, obj in enumerate(objs):
        if pks is not None:
            obj.pk = pks[index]
            obj._state.adding = False
        obj._state.db = alias


def insert(objs: list[Model], *, set_pks: bool = False) -> None:
    """Insert unsaved instances of one model, as few statements as possible. With ``set_pks``,
    each instance gets its primary key (``RETURNING`` where the database has it, else one row
    per statement and the cursor's last id)."""
    if not objs:
        return
    model = type(objs[0])
    alias = router.db_for_write(model)
    connection = connections[alias]
    returning = set_pks and connection.features.can_return_columns_from_insert
    step = CHUNK if returning or not set_pks else 1
    with connection.cursor() as cursor:
        for start in range(0, len(objs), step):
            chunk = objs[start : start + step]
            sql, fields = _statement(model, alias, len(chunk), returning)
            cursor.execute(sql, _values(chunk, fields, connection))
            if not set_pks:
                _saved(chunk, alias)
            elif returning:
                _saved(chunk, alias, [row[0] for row in cursor.fetchall()])
            else:
                table, column = model._meta.db_table, model._meta.pk.column
                _saved(chunk, alias, [connection.ops.last_insert_id(cursor, table, column)])


def insert_with(objs: list[Model], companions: list[Model]) -> None:
    """Insert ``objs`` (each gets its primary key) and ``companions`` (rows of another model that
    need no key back, such as a run's call rows). On PostgreSQL both go in one statement (the
    companions' INSERT as a data-modifying ``WITH``), so they cost one round trip; elsewhere
    in two. Either all rows are written or none."""
    model = type(objs[0])
    alias = router.db_for_write(model)
    connection = connections[alias]
    if (
        not companions
        or connection.vendor != "postgresql"
        or router.db_for_write(type(companions[0])) != alias
        or len(objs) > CHUNK
        or len(companions) > CHUNK
    ):
        insert(companions)
        insert(objs, set_pks=True)
        return
    first, first_fields = _statement(type(companions[0]), alias, len(companions), False)
    main, main_fields = _statement(model, alias, len(objs), True)
    params = _values(companions, first_fields, connection) + _values(objs, main_fields, connection)
    with connection.cursor() as cursor:
        cursor.execute(f"WITH companions AS ({first}) {main}", params)
        _saved(objs, alias, [row[0] for row in cursor.fetchall()])
    _saved(companions, alias)


@functools.lru_cache(maxsize=128)
def _update_statement(model: type[Model], alias: str, names: tuple[str, ...], where: tuple):
    connection = connections[alias]
    quote = connection.ops.quote_name
    fields = tuple(model._meta.get_field(name) for name in names)
    conditions = tuple(model._meta.get_field(name) for name in where)
    assignments = ", ".join(f"{quote(f.column)} = %s" for f in fields)
    tests = " AND ".join(f"{quote(f.column)} = %s" for f in conditions)
    table = quote(model._meta.db_table)
    return f"UPDATE {table} SET {assignments} WHERE {tests}", fields, conditions  # noqa: S608


def update(model: type[Model], where: dict, **values) -> int:
    """``model.objects.filter(**where).update(**values)`` for equality conditions on concrete
    fields, as one prepared statement; returns the number of rows changed."""
    alias = router.db_for_write(model)
    connection = connections[alias]
    sql, fields, conditions = _update_statement(model, alias, tuple(values), tuple(where))
    params = [f.get_db_prep_save(values[f.name], connection) for f in fields]
    params += [f.get_db_prep_value(where[f.name], connection) for f in conditions]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount
