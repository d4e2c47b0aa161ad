"""Indexes for the inbox search on PostgreSQL: words of the subject by full-text search
(a GIN index on the very expression the inbox queries: to_tsvector('simple', subject)), and
the sender's email by prefix (the pattern operator class makes LIKE 'abc%' use it whatever
the collation). SQLite has neither; its demo-sized tables don't need them."""

from __future__ import annotations

from django.db import migrations

INDEXES = {
    "fb_subject_search": "USING gin (to_tsvector('simple'::regconfig, subject))",
    "fb_sender_prefix": "(merchant_id, sender_email varchar_pattern_ops)",
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, definition in INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON feedback_feedback {definition}"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("feedback", "0001_feedback_inbox")]

    operations = [migrations.RunPython(create, drop)]
