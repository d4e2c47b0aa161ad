from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from customers.dataset import dataset_generate
from merchants.models import Merchant


class Command(BaseCommand):
    help = (
        "Generates N customers and M orders (with lines and timeline) for a merchant, for "
        "benchmarks. COPY on PostgreSQL; a slower portable path elsewhere."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--merchant", required=True, help="The merchant's slug.")
        parser.add_argument("--customers", type=int, required=True)
        parser.add_argument("--orders", type=int, required=True)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--no-timeline", action="store_true", help="Skip timeline entries.")

    def handle(self, *args, **options) -> None:
        merchant = Merchant.objects.filter(slug=options["merchant"]).first()
        if merchant is None:
            raise CommandError(f"No merchant with the slug {options['merchant']!r}.")
        if options["customers"] < 1 or options["orders"] < 0:
            raise CommandError("--customers must be at least 1 and --orders at least 0.")
        self.stdout.write(
            f"Generating {options['customers']:,} customers and {options['orders']:,} orders "
            f"for {merchant.slug} on {connection.vendor}…"
        )
        result = dataset_generate(
            merchant=merchant,
            customers=options["customers"],
            orders=options["orders"],
            seed=options["seed"],
            timeline=not options["no_timeline"],
            on_progress=lambda table, rows: self.stdout.write(f"  {rows:,} {table}…"),
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"{result.customers:,} customers, {result.orders:,} orders, "
                f"{result.lines:,} lines, {result.activities:,} timeline entries "
                f"in {result.seconds:.1f} s"
            )
        )
