"""Hand-written reads for the lookups every API request or rewards page makes: compiling
such a query through the ORM costs more than running it (one order per request and the
rewards page in `make bench`). The SQL is plain and portable; rows come back as model
instances, converted as the ORM would convert them."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.models.expressions import Col

Model = TypeVar("Model", bound=models.Model)


def row_where(
    model: type[Model],
    condition: str,
    params: Sequence[Any],
    *,
    order_by: str = "id",
    lock: bool = False,
) -> Model | None:
    """The first row of `model`'s table meeting `condition` (SQL with %s placeholders) in
    `order_by` order; with `lock`, locked until the transaction ends where the database can."""
    database = connections[DEFAULT_DB_ALIAS]
    table = model._meta.db_table
    columns = _columns_of(database, model, table)
    sql = f"SELECT {columns.sql} FROM {table} WHERE {condition} ORDER BY {order_by} LIMIT 1"
    if lock and database.features.has_select_for_update:
        sql += " FOR UPDATE"
    row = _row(database, sql, params)
    return None if row is None else columns.instance(row)


class Columns:
    """One table's columns in a hand-written SELECT, and how a row of them becomes a model
    instance with the database's converters, as the ORM would make it."""

    def __init__(self, connection, model: type[models.Model], alias: str) -> None:
        self.connection, self.model = connection, model
        self.fields = model._meta.concrete_fields
        self.names = [field.attname for field in self.fields]
        self.sql = ", ".join(f"{alias}.{connection.ops.quote_name(field.column)}"
                             for field in self.fields)  # fmt: skip
        self.converters = []
        for n, field in enumerate(self.fields):
            column = Col(alias, field)
            found = connection.ops.get_db_converters(column) + field.get_db_converters(connection)
            if found:
                self.converters.append((n, column, found))

    def instance(self, values: list) -> models.Model:
        for n, column, converters in self.converters:
            for converter in converters:
                values[n] = converter(values[n], column, self.connection)
        return self.model.from_db(self.connection.alias, self.names, values)


# Each connection's Columns, built once: the converters depend on the database.
_columns: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _columns_of(database, model: type[models.Model], alias: str) -> Columns:
    known = _columns.setdefault(database, {})
    if (model, alias) not in known:
        known[model, alias] = Columns(database, model, alias)
    return known[model, alias]


def pair_where(
    first: tuple[type[models.Model], str],
    second: tuple[type[models.Model], str],
    joined_on: str,
    condition: str,
    params: Sequence[Any],
) -> tuple[Any, Any] | None:
    """One row of `first` (a model and its alias in the SQL) joined to `second` on
    `joined_on`, meeting `condition`, as two model instances; or None."""
    database = connections[DEFAULT_DB_ALIAS]
    (model, alias), (other, other_alias) = first, second
    left, right = _columns_of(database, model, alias), _columns_of(database, other, other_alias)
    row = _row(
        database,
        f"SELECT {left.sql}, {right.sql} FROM {model._meta.db_table} {alias} "
        f"JOIN {other._meta.db_table} {other_alias} ON {joined_on} WHERE {condition}",
        params,
    )
    if row is None:
        return None
    split = len(left.names)
    return left.instance(row[:split]), right.instance(row[split:])


def _row(database, sql: str, params: Sequence[Any]) -> list | None:
    with database.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return None if row is None else list(row)
