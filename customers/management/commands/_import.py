"""The shared body of `import_customers` and `import_orders`."""

from __future__ import annotations

import os
import sys

from django.core.management.base import BaseCommand, CommandError

from customers.imports import ImportRefused, Progress, import_stream
from merchants.models import Merchant


class ImportCommand(BaseCommand):
    kind: str

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help="A UTF-8 CSV file with a header row.")
        parser.add_argument("--merchant", required=True, help="The merchant's slug.")

    def handle(self, *args, **options) -> None:
        merchant = Merchant.objects.filter(slug=options["merchant"]).first()
        if merchant is None:
            raise CommandError(f"No merchant with the slug {options['merchant']!r}.")
        path = options["file"]
        if not os.path.isfile(path):
            raise CommandError(f"No file at {path}.")
        size = os.path.getsize(path) or 1
        failed_rows = 0

        def on_error(row: int, column: str, reason: str) -> None:
            nonlocal failed_rows
            failed_rows += 1
            self.stderr.write(f"\rrow {row}, {column}: {reason}")

        def on_progress(progress: Progress) -> None:
            done = min(progress.bytes_done, size)
            filled = int(30 * done / size)
            bar = "#" * filled + "-" * (30 - filled)
            sys.stdout.write(f"\r[{bar}] {100 * done // size:3d}%  {progress.rows_done} rows")
            sys.stdout.flush()

        try:
            with open(path, "rb") as stream:
                progress = import_stream(
                    merchant=merchant,
                    kind=self.kind,
                    stream=stream,
                    on_error=on_error,
                    on_progress=on_progress,
                )
        except ImportRefused as error:
            raise CommandError(str(error)) from error
        sys.stdout.write("\n")
        self.stdout.write(
            f"{progress.rows_ok} rows imported, {progress.rows_failed} rows skipped "
            f"of {progress.rows_done}."
        )
        if failed_rows:
            raise CommandError(f"{progress.rows_failed} rows were skipped; see the reasons above.")
