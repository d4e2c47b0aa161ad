from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from loyalty.models import Program
from loyalty.services.tiers import tiers_recalculate


class Command(BaseCommand):
    help = "Recalculates tiers now (upgrades, downgrades after grace, floors)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--merchant", help="Only this merchant (slug).")

    def handle(self, *args, **options) -> None:
        programs = Program.objects.select_related("merchant").order_by("merchant__slug")
        if options["merchant"]:
            programs = programs.filter(merchant__slug=options["merchant"])
            if not programs.exists():
                raise CommandError(f"No loyalty program for the merchant {options['merchant']!r}.")
        for program in programs:
            started = time.monotonic()
            changed = tiers_recalculate(merchant=program.merchant)
            self.stdout.write(
                f"{program.merchant.slug}: {changed} tier change(s) "
                f"in {time.monotonic() - started:.1f} s"
            )
