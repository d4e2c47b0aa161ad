"""Small ORM expressions that keep set-based statements portable between databases."""

from __future__ import annotations

from django.db.models import Func


class FractionalOnSQLite(Func):
    """The expression as it is on PostgreSQL; a REAL on SQLite, where a whole-valued
    decimal is stored as an integer and integer ÷ integer would drop the fraction."""

    template = "%(expressions)s"

    def as_sqlite(self, compiler, connection, **extra_context):
        return super().as_sql(
            compiler, connection, template="CAST(%(expressions)s AS REAL)", **extra_context
        )
