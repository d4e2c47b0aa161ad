"""Small ORM expressions that keep set-based statements portable between databases."""

from __future__ import annotations

from django.db.models import Field, FloatField, Func
from django.db.models.lookups import In


class FractionalOnSQLite(Func):
    """The expression as it is on PostgreSQL; a REAL on SQLite, where a whole-valued
    decimal is stored as an integer and integer ÷ integer would drop the fraction."""

    template = "%(expressions)s"

    def as_sqlite(self, compiler, connection, **extra_context):
        return super().as_sql(
            compiler, connection, template="CAST(%(expressions)s AS REAL)", **extra_context
        )


@Field.register_lookup
class AnyOf(In):
    """`field__any=[…]`: the IN lookup, sent to PostgreSQL as `= ANY(%s)` with one array
    parameter. A batch asks for a thousand ids at a time, and a thousand placeholders cost
    more to build and parse than the query costs to run."""

    lookup_name = "any"

    def as_postgresql(self, compiler, connection):
        if not isinstance(self.rhs, list | tuple | set | frozenset):
            return self.as_sql(compiler, connection)
        lhs, lhs_params = self.process_lhs(compiler, connection)
        values = [
            self.lhs.output_field.get_db_prep_value(value, connection, prepared=True)
            for value in self.rhs
            if value is not None
        ]
        return f"{lhs} = ANY(%s)", (*lhs_params, values)


class Epoch(Func):
    """A timestamp as seconds since 1970, a float on both databases: gaps between dates
    compared as numbers (PostgreSQL's interval and SQLite's text dates don't mix)."""

    template = "EXTRACT(EPOCH FROM %(expressions)s)::double precision"
    output_field = FloatField()

    def as_sqlite(self, compiler, connection, **extra_context):
        return super().as_sql(
            compiler, connection, template="((julianday(%(expressions)s) - 2440587.5) * 86400.0)",
            **extra_context,
        )  # fmt: skip
