from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from merchants.api_keys import store_connection_create
from merchants.models import Merchant, StoreConnection


class Command(BaseCommand):
    help = "Creates a Shopify or WooCommerce connection and prints its webhook URL and secret."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--merchant", required=True, help="The merchant's slug.")
        parser.add_argument("--platform", required=True, choices=StoreConnection.Platform.values)
        parser.add_argument("--name", default="")
        parser.add_argument(
            "--secret", default="", help="The platform's own signing secret; default: make one."
        )

    def handle(self, *args, **options) -> None:
        merchant = Merchant.objects.filter(slug=options["merchant"]).first()
        if merchant is None:
            raise CommandError(f"No merchant with the slug {options['merchant']!r}.")
        try:
            connection = store_connection_create(
                merchant=merchant,
                platform=options["platform"],
                name=options["name"],
                secret=options["secret"],
            )
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from error
        path = reverse(f"hook-{connection.platform}", kwargs={"connection": connection.public_id})
        self.stdout.write(f"Webhook URL: {settings.SITE_URL.rstrip('/')}{path}")
        self.stdout.write(f"Secret:      {connection.secret}")
