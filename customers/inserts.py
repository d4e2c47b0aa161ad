"""New rows in one statement. On PostgreSQL many rows go through COPY, with ids taken from
the table's sequence first; a few go through one INSERT … VALUES … RETURNING wherever the
database returns ids that way; otherwise bulk_create. The bulk ingest paths (API batches,
CSV imports) measured 9-10% of raw COPY speed with bulk_create alone, below the 15% their
budget asks (docs/architecture.md, Budgets), and one order per request spent more of its
time building bulk_create's statements than running them; the paths are tested against
each other."""

from __future__ import annotations

import json
from collections.abc import Sequence
from operator import attrgetter

from django.db import connection, models

# Tests turn this off to compare these statements with bulk_create's.
USE_COPY = True
# Up to this many rows, one INSERT … VALUES: COPY costs a round trip more for the ids.
FEW_ROWS = 20


def _row_values(fields: Sequence[models.Field]):
    """A function from an instance to its COPY row: the attributes in column order, with
    JSON fields encoded."""
    values = attrgetter(*(field.attname for field in fields))
    encoded = [(i, f.encoder) for i, f in enumerate(fields) if isinstance(f, models.JSONField)]
    if not encoded:
        return values

    def row_values(row):
        cells = list(values(row))
        for index, encoder in encoded:
            if cells[index] is not None:
                cells[index] = json.dumps(cells[index], cls=encoder)
        return cells

    return row_values


def rows_insert(model: type[models.Model], rows: Sequence[models.Model]) -> None:
    """Stores unsaved instances of `model` and sets their ids, as bulk_create does."""
    if not rows:
        return
    if USE_COPY and len(rows) <= FEW_ROWS and connection.features.can_return_rows_from_bulk_insert:
        _values_insert(model, rows)
        return
    if connection.vendor != "postgresql" or not USE_COPY:
        model.objects.bulk_create(rows)
        return
    meta = model._meta
    fields = meta.concrete_fields
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [meta.db_table, meta.pk.column, len(rows)],
        )
        for row, (pk,) in zip(rows, cursor.fetchall(), strict=True):
            row.pk = pk
            row._state.adding = False
            row._state.db = connection.alias
        columns = ", ".join(quote(field.column) for field in fields)
        statement = f"COPY {quote(meta.db_table)} ({columns}) FROM STDIN"
        # Raised as Django's errors (IntegrityError on a duplicate), as bulk_create would.
        row_values = _row_values(fields)
        with connection.wrap_database_errors, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row_values(row))


def _values_insert(model: type[models.Model], rows: Sequence[models.Model]) -> None:
    """The rows in one INSERT … VALUES, each value prepared as bulk_create prepares it."""
    meta = model._meta
    fields = [field for field in meta.concrete_fields if field is not meta.pk]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    values = [
        field.get_db_prep_save(field.pre_save(instance, True), connection)
        for instance in rows
        for field in fields
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES "
            f"{', '.join([row] * len(rows))} RETURNING {quote(meta.pk.column)}",
            values,
        )
        for instance, (pk,) in zip(rows, cursor.fetchall(), strict=True):
            instance.pk = pk
            instance._state.adding = False
            instance._state.db = connection.alias


def rows_update(model: type[models.Model], rows: Sequence[models.Model], fields: list[str]):
    """Writes `fields` of many saved rows in one statement. On PostgreSQL an UPDATE … FROM
    unnest(one array per column): bulk_update's CASE over a thousand ids makes each row
    compare against every id. Elsewhere, bulk_update; callers pass a chunk of at most a
    thousand rows (a batch, or a job's chunk)."""
    if not rows:
        return
    if connection.vendor != "postgresql" or not USE_COPY:
        model.objects.bulk_update(rows, fields)
        return
    meta = model._meta
    quote = connection.ops.quote_name
    columns = [meta.pk, *(meta.get_field(name) for name in fields)]
    arrays = ", ".join(f"%s::{field.db_type(connection)}[]" for field in columns)
    names = ", ".join(f"c{index}" for index in range(len(columns)))
    sets = ", ".join(
        f"{quote(field.column)} = v.c{index}" for index, field in enumerate(columns) if index
    )
    table = quote(meta.db_table)
    statement = (
        f"UPDATE {table} SET {sets} FROM unnest({arrays}) AS v({names}) "
        f"WHERE {table}.{quote(meta.pk.column)} = v.c0"
    )
    values = [[getattr(row, field.attname) for row in rows] for field in columns]
    with connection.cursor() as cursor:
        cursor.execute(statement, values)
