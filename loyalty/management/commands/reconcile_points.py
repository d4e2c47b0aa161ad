from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from loyalty.services.schedule import accounts_mismatched
from merchants.models import Merchant


class Command(BaseCommand):
    help = "Checks every points account against the sum of its ledger; prints mismatches."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--merchant", help="Only this merchant (slug).")

    def handle(self, *args, **options) -> None:
        merchant_id = None
        if options["merchant"]:
            merchant = Merchant.objects.filter(slug=options["merchant"]).first()
            if merchant is None:
                raise CommandError(f"No merchant with the slug {options['merchant']!r}.")
            merchant_id = merchant.pk
        found = 0
        for account in accounts_mismatched(merchant_id=merchant_id).iterator(chunk_size=1000):
            found += 1
            self.stdout.write(
                f"{account.merchant.slug} customer {account.customer_id}: stored "
                f"{account.available} available / {account.pending} pending, ledger "
                f"{account.ledger_available} / {account.ledger_pending}"
            )
        self.stdout.write(f"{found} mismatched account(s).")
        if found:
            raise CommandError("The ledger and the balances disagree.")
