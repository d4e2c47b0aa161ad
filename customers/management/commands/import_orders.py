from __future__ import annotations

from customers.management.commands._import import ImportCommand
from customers.models import ImportJob


class Command(ImportCommand):
    help = "Imports orders from a CSV file, one row per order line (a bad order is skipped)."
    kind = ImportJob.Kind.ORDERS
