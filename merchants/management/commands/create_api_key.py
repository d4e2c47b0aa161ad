from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from merchants.api_keys import api_key_create
from merchants.models import ApiKey, Merchant


class Command(BaseCommand):
    help = "Creates an API key for a merchant and prints it. It is not shown again."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--merchant", required=True, help="The merchant's slug.")
        parser.add_argument("--name", required=True, help="Where the key is used.")
        parser.add_argument(
            "--scopes",
            default="ingest,read",
            help=f"Comma-separated, of: {', '.join(ApiKey.Scope.values)}. Default: ingest,read",
        )

    def handle(self, *args, **options) -> None:
        merchant = Merchant.objects.filter(slug=options["merchant"]).first()
        if merchant is None:
            raise CommandError(f"No merchant with the slug {options['merchant']!r}.")
        scopes = [s.strip() for s in options["scopes"].split(",") if s.strip()]
        try:
            _key, raw_key = api_key_create(merchant=merchant, name=options["name"], scopes=scopes)
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from error
        self.stdout.write(raw_key)
