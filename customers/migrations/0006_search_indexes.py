"""Indexes for the customer search on PostgreSQL: names by case-insensitive prefix and email
by prefix, each after the merchant. Without them a search reads every customer (1.5 s at a
million). The pattern operator classes make LIKE 'abc%' use them whatever the collation.
SQLite has no such operator classes; its demo-sized tables don't need them."""
from __future__ import annotations

from django.db import migrations

INDEXES = {
    "customer_search_first_name": "(merchant_id, upper(first_name::text) text_pattern_ops)",
    "customer_search_last_name": "(merchant_id, upper(last_name::text) text_pattern_ops)",
    "customer_search_email": "(merchant_id, email varchar_pattern_ops)",
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, columns in INDEXES.items():
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON customers_customer {columns}")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("customers", "0005_personas")]

    operations = [migrations.RunPython(create, drop)]
