from __future__ import annotations

from customers.management.commands._import import ImportCommand
from customers.models import ImportJob


class Command(ImportCommand):
    help = "Imports customers from a CSV file (a bad row is reported and skipped)."
    kind = ImportJob.Kind.CUSTOMERS
