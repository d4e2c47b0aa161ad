from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from merchants.demo import DEMO_MERCHANTS, DEMO_PASSWORD, demo_seed


class Command(BaseCommand):
    help = "Creates the demo merchants and their staff. Running it again changes nothing."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--quiet-signins", action="store_true", help="Don't print sign-ins.")

    def handle(self, *args, **options) -> None:
        result = demo_seed()
        if result.created:
            self.stdout.write("Created the demo shops with their staff, customers, orders, "
                              "points and tickets.")  # fmt: skip
        else:
            self.stdout.write("Demo data already present; nothing changed.")
        if options["quiet_signins"]:
            return
        base = settings.SITE_URL.rstrip("/")
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"Regulars: {base}/"))
        self.stdout.write(f"  Sign in:     {base}/accounts/login/")
        self.stdout.write(f"  Password for every demo account: {DEMO_PASSWORD}")
        for demo in DEMO_MERCHANTS:
            for email, _name, role in demo.staff:
                self.stdout.write(f"  {demo.name:<11} {role.label:<14} {email}")
        self.stdout.write("")
