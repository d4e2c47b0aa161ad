from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from feedback.dataset import tickets_generate
from merchants.models import Merchant


class Command(BaseCommand):
    help = (
        "Generates N feedback tickets (with messages, cycles, SLA breaches and CSAT surveys) "
        "for a merchant's existing customers, for benchmarks. COPY on PostgreSQL; a slower "
        "portable path elsewhere."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--merchant", required=True, help="The merchant's slug.")
        parser.add_argument("--tickets", type=int, required=True)
        parser.add_argument("--seed", type=int, default=1)

    def handle(self, *args, **options) -> None:
        merchant = Merchant.objects.filter(slug=options["merchant"]).first()
        if merchant is None:
            raise CommandError(f"No merchant with the slug {options['merchant']!r}.")
        if options["tickets"] < 1:
            raise CommandError("--tickets must be at least 1.")
        self.stdout.write(
            f"Generating {options['tickets']:,} tickets for {merchant.slug} on {connection.vendor}…"
        )
        result = tickets_generate(
            merchant=merchant,
            tickets=options["tickets"],
            seed=options["seed"],
            on_progress=lambda table, rows: self.stdout.write(f"  {rows:,} {table}…"),
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"{result.tickets:,} tickets, {result.messages:,} messages, "
                f"{result.cycles:,} cycles, {result.breaches:,} SLA breaches, "
                f"{result.surveys:,} CSAT surveys in {result.seconds:.1f} s"
            )
        )
