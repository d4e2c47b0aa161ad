"""The demo merchants: "Demo Store" with one person per role, and "Other Shop", so that
isolation between merchants is visible. Seeding twice changes nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

import time_machine
from django.db import transaction

from merchants.models import Merchant, StaffMember, User
from merchants.roles import Role

DEMO_PASSWORD = "regulars-demo"


@dataclass(frozen=True)
class DemoMerchant:
    slug: str
    name: str
    currency: str
    timezone: str
    language: str
    brand_color: str
    staff: tuple[tuple[str, str, Role], ...]


DEMO_MERCHANTS = (
    DemoMerchant(
        slug="demo-store",
        name="Demo Store",
        currency="USD",
        timezone="America/New_York",
        language="en",
        brand_color="#6f42c1",
        staff=(
            ("owner@demo.test", "Olivia Owner", Role.OWNER),
            ("manager@demo.test", "Max Manager", Role.MANAGER),
            ("marketer@demo.test", "Mira Marketer", Role.MARKETER),
            ("support@demo.test", "Sam Support", Role.SUPPORT),
            ("analyst@demo.test", "Ana Analyst", Role.ANALYST),
        ),
    ),
    DemoMerchant(
        slug="other-shop",
        name="Other Shop",
        currency="EUR",
        timezone="Europe/Berlin",
        language="en",
        brand_color="#198754",
        staff=(("other@demo.test", "Otto Other", Role.OWNER),),
    ),
)


@dataclass(frozen=True)
class SeedResult:
    created: list[str]


# Apps above merchants add their demo data here from their AppConfig.ready(), so the one
# `seed_demo` command seeds everything without merchants importing them.
# Steps run by `order` (lower first): loyalty sets up its program before customers/
# ingests the demo orders, so those orders earn their points through the real services.
DEMO_STEPS: list[tuple[int, Callable[[], list[str]]]] = []


def demo_step_register(step: Callable[[], list[str]], order: int = 100) -> None:
    if all(registered is not step for _order, registered in DEMO_STEPS):
        DEMO_STEPS.append((order, step))


# The jobs a shop's nights would have run, on each night of the demo's history (loyalty
# registers its scheduled jobs: pending points, expiry, tiers, memberships): (merchant, at).
DEMO_NIGHT_JOBS: list[Callable[[Merchant, datetime], object]] = []


def demo_night_register(job: Callable[[Merchant, datetime], object]) -> None:
    if job not in DEMO_NIGHT_JOBS:
        DEMO_NIGHT_JOBS.append(job)


def demo_history_play(
    *, merchant: Merchant, nights: Iterable[tuple[datetime, list]], ingest: Callable[[list], None]
) -> None:
    """Lives the demo's history night by night (`history_nights`) through the real
    services: the orders placed up to a night are ingested with the clock at that night,
    as the shop would have sent them, then that night's jobs run. So points are earned,
    become available, expire and move customers between tiers on the dates they would
    have, and the dashboard's "this month" holds this month only. The last of `nights` is
    the present, ingested at the real time; tonight is the scheduler's to run."""
    *past, (_now, current) = list(nights)
    for night, orders in past:
        with time_machine.travel(night, tick=False):
            ingest(orders)
            for job in DEMO_NIGHT_JOBS:
                job(merchant, night)
    ingest(current)


def history_nights(start: datetime, end: datetime, zone: tzinfo) -> list[datetime]:
    """The nights the demo's history is lived by, at 23:00 in the merchant's time zone:
    the last evening of each month from `start`, then every evening of the current month
    so far (its figures are the dashboard's "this month"), then `end`, the present."""
    nights = []
    cursor = start.astimezone(zone).replace(day=1, hour=23, minute=0, second=0, microsecond=0)
    this_month = end.astimezone(zone).replace(day=1, hour=23, minute=0, second=0, microsecond=0)
    while cursor < this_month:
        following = (cursor + timedelta(days=32)).replace(day=1)
        nights.append(following - timedelta(days=1))
        cursor = following
    while cursor < end:
        nights.append(cursor)
        cursor += timedelta(days=1)
    return [*nights, end]


@transaction.atomic
def demo_seed() -> SeedResult:
    created: list[str] = []
    for demo in DEMO_MERCHANTS:
        merchant, made = Merchant.objects.get_or_create(
            slug=demo.slug,
            defaults={
                "name": demo.name,
                "base_currency": demo.currency,
                "timezone": demo.timezone,
                "default_language": demo.language,
                "brand_color": demo.brand_color,
            },
        )
        if made:
            created.append(f"merchant {demo.slug}")
        for email, full_name, role in demo.staff:
            user = User.objects.filter(email=email).first()
            if user is None:
                user = User.objects.create_user(
                    email=email, password=DEMO_PASSWORD, full_name=full_name
                )
                created.append(f"user {email}")
            _member, made = StaffMember.objects.get_or_create(
                merchant=merchant, user=user, defaults={"role": role}
            )
            if made:
                created.append(f"{email} as {role} of {demo.slug}")
    for _order, step in sorted(DEMO_STEPS, key=lambda pair: pair[0]):
        created += step()
    return SeedResult(created=created)
