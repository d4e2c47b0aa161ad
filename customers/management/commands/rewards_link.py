from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from customers.models import Customer
from customers.services.portal import MAGIC_LINK_MINUTES, magic_link_make
from merchants.models import Merchant, normalise_email


class Command(BaseCommand):
    help = "Prints a sign-in link to a customer's rewards page (single use, 15 minutes)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--merchant", required=True, help="the merchant's slug")
        parser.add_argument("--email", required=True, help="the customer's email")

    def handle(self, *args, **options) -> None:
        merchant = Merchant.objects.filter(slug=options["merchant"]).first()
        if merchant is None:
            raise CommandError(f"No merchant with the slug {options['merchant']!r}.")
        customer = (
            Customer.objects.select_related("merchant")
            .filter(merchant=merchant, email=normalise_email(options["email"]), erased_at=None)
            .order_by("pk")
            .first()
        )
        if customer is None:
            raise CommandError(
                f"{merchant.name} has no customer with the email {options['email']!r}."
            )
        link = magic_link_make(customer=customer)
        self.stdout.write(
            f"Rewards page of {customer} at {merchant.name} ({MAGIC_LINK_MINUTES} min, once):"
        )
        self.stdout.write(link)
