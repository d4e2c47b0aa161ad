"""One row by a hand-written condition, for the lookups every API request makes: compiling
such a query through the ORM costs more than running it (one order per request in
`make bench`). The SQL is plain and portable; the row comes back as a model instance."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from django.db import connection, models

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
    sql = f"SELECT * FROM {model._meta.db_table} WHERE {condition} ORDER BY {order_by} LIMIT 1"
    if lock and connection.features.has_select_for_update:
        sql += " FOR UPDATE"
    return next(iter(model._default_manager.raw(sql, params)), None)
