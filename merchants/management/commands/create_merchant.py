from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from merchants.services import merchant_create


class Command(BaseCommand):
    help = (
        "Creates a merchant with its first owner. A new owner then sets a password through "
        "'Forgot your password?' on the sign-in page."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--slug", required=True)
        parser.add_argument("--owner-email", required=True)
        parser.add_argument("--currency", default="USD")
        parser.add_argument("--timezone", default="UTC")
        parser.add_argument("--language", default="en")

    def handle(self, *args, **options) -> None:
        try:
            merchant = merchant_create(
                name=options["name"],
                slug=options["slug"],
                owner_email=options["owner_email"],
                base_currency=options["currency"],
                timezone_name=options["timezone"],
                default_language=options["language"],
            )
        except ValidationError as error:
            raise CommandError(
                "; ".join(f"{k}: {' '.join(v)}" for k, v in error.message_dict.items())
            ) from error
        self.stdout.write(self.style.SUCCESS(f"Created {merchant.name} ({merchant.slug})."))
