"""What the few reads written by hand (raw SQL on the hottest pages) need from the database
beyond what `Model.objects.raw()` converts for a model's own columns."""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils.dateparse import parse_datetime


def moment(value) -> datetime:
    """A time as the database gave it, aware in UTC: PostgreSQL gives it so, SQLite gives
    naive or text."""
    if isinstance(value, str):
        value = parse_datetime(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
