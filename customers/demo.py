"""Demo customers and orders for Demo Store: two years of a tea shop's trade, with
customers who behave in recognisable ways (loyal, lapsed, one-time, discount-driven,
convenience-driven), and three personas in the merchant's words. Deterministic, and
seeding twice changes nothing."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.utils.timezone import now

from customers.models import Customer, Persona
from customers.personas import persona_save, segments_and_personas_refresh
from customers.services import CustomerData, OrderData, OrderLineData, orders_ingest_many
from merchants.demo import demo_history_play, history_nights
from merchants.models import Merchant

PRODUCTS = [
    ("TEA-SEN-100", "Sencha 100 g", "green tea", Decimal("14.00")),
    ("TEA-JAS-100", "Jasmine pearls 100 g", "green tea", Decimal("19.00")),
    ("TEA-ASS-250", "Assam breakfast 250 g", "black tea", Decimal("12.50")),
    ("TEA-EARL-100", "Earl Grey 100 g", "black tea", Decimal("11.00")),
    ("TEA-OOL-50", "Milk oolong 50 g", "oolong", Decimal("16.00")),
    ("TEA-CHAI-20", "Chai, 20 bags", "tea bags", Decimal("6.50")),
    ("TEA-MINT-20", "Moroccan mint, 20 bags", "tea bags", Decimal("5.90")),
    ("POT-CLAY", "Clay teapot", "teaware", Decimal("42.00")),
    ("CUP-SET", "Two glass cups", "teaware", Decimal("18.00")),
    ("GIFT-BOX", "Tasting gift box", "gifts", Decimal("35.00")),
]
FIRST = ["Ava", "Omar", "Sara", "Ivan", "Leila", "Noah", "Maryam", "Dmitri", "Chloe", "Reza"]
LAST = ["Haddad", "Petrova", "Karimi", "Smith", "Nasser", "Volkov", "Rahimi", "Brown", "Aziz"]
CITIES = [("New York", "US"), ("Toronto", "CA"), ("London", "GB"), ("Dubai", "AE"),
          ("Tehran", "IR"), ("Moscow", "RU"), ("Cairo", "EG"), ("Berlin", "DE")]  # fmt: skip
PERSONAS = [
    (
        "Busy professional",
        "Orders on the phone, pays for express delivery and doesn't wait for sales. Values "
        "convenience over price.",
        "Free express shipping above 60; reorder reminders.",
        [{"field": "express_share", "op": "gte", "value": "50"}],
    ),
    (
        "Budget shopper",
        "Waits for a code before buying and picks tea bags and the cheaper blends. Values "
        "discounts.",
        "Points multipliers instead of deeper discounts; bundles of tea bags.",
        [{"field": "discount_share", "op": "gte", "value": "50"}],
    ),
    (
        "Tea lover",
        "Comes back every month or so for loose-leaf tea and tries what is new.",
        "Early access to new harvests; tasting boxes.",
        [{"field": "orders", "op": "gte", "value": "8"}],
    ),
]


def _kind(rng: random.Random) -> str:
    return rng.choices(
        ["loyal", "lapsed", "one_time", "discount", "convenience"], weights=[14, 18, 34, 19, 15]
    )[0]


def _orders_for(rng: random.Random, kind: str, start: datetime, end: datetime) -> list[datetime]:
    span = (end - start).days
    if kind == "one_time":
        # A growing shop: most one-time buyers are from the last fifteen months.
        return [end - timedelta(days=min(span, rng.expovariate(1 / 220)))]
    if kind == "lapsed":
        # Good customers who drifted away some months ago: At Risk, Can't Lose Them.
        first = start + timedelta(days=rng.uniform(span * 0.3, span * 0.6))
        count = rng.randint(2, 8)
        return sorted(first + timedelta(days=rng.uniform(0, span * 0.2)) for _ in range(count))
    gap = {"loyal": 58, "discount": 90, "convenience": 52}[kind]
    moment = start + timedelta(days=rng.uniform(0, span * 0.5))
    times = []
    while moment < end:
        times.append(moment)
        moment += timedelta(days=max(3.0, rng.gauss(gap, gap / 3)))
    return times or [end - timedelta(days=rng.uniform(1, 30))]


def _basket(rng: random.Random, kind: str) -> list[OrderLineData]:
    pool = PRODUCTS[5:7] + PRODUCTS[2:4] if kind == "discount" else PRODUCTS
    lines = []
    for sku, name, category, price in rng.sample(pool, rng.randint(1, 3)):
        lines.append(
            OrderLineData(
                sku=sku, name=name, category=category, quantity=rng.randint(1, 3), price=price
            )
        )
    return lines


def demo_customers_seed(merchant: Merchant | None = None) -> list[str]:
    merchant = merchant or Merchant.objects.filter(slug="demo-store").first()
    if (
        merchant is None
        or Customer.objects.filter(merchant=merchant, external_id__startswith="demo-").exists()
    ):
        return []
    rng = random.Random(20261124)
    size = settings.DEMO_CUSTOMERS
    end = now().replace(microsecond=0)
    start = end - timedelta(days=730)
    orders: list[OrderData] = []
    for number in range(1, size + 1):
        kind = _kind(rng)
        city, country = rng.choice(CITIES)
        first, last = rng.choice(FIRST), rng.choice(LAST)
        person = CustomerData(
            external_id=f"demo-{number:05d}",
            email=f"{first.lower()}.{last.lower()}.{number}@demo-customer.test",
            first_name=first,
            last_name=last,
            birth_date=date(rng.randint(1955, 2006), rng.randint(1, 12), rng.randint(1, 28)),
            gender=rng.choice(["female", "male", "female", "male", "other", ""]),
            city=city,
            country=country,
            language=rng.choice(["en", "en", "ar", "fa", "ru"]),
            acquisition_channel=rng.choice(
                ["instagram", "search", "friend", "newsletter", "market stall"]
            ),
            marketing_consent=rng.random() < 0.6,
        )
        for index, placed in enumerate(_orders_for(rng, kind, start, end)):
            lines = _basket(rng, kind)
            subtotal = sum((line.price * line.quantity for line in lines), Decimal("0.00"))
            uses_code = (kind == "discount" and rng.random() < 0.8) or rng.random() < 0.08
            discount = (
                (subtotal * Decimal("0.15")).quantize(Decimal("0.01"))
                if uses_code
                else Decimal("0.00")
            )
            express = (kind == "convenience" and rng.random() < 0.85) or rng.random() < 0.05
            shipping = (
                Decimal("9.90")
                if express
                else (Decimal("0.00") if subtotal > 50 else Decimal("4.90"))
            )
            orders.append(
                OrderData(
                    source="api",
                    external_id=f"demo-{number:05d}-{index + 1:03d}",
                    placed_at=placed,
                    total=subtotal - discount + shipping,
                    subtotal=subtotal,
                    discount=discount,
                    shipping=shipping,
                    currency=merchant.base_currency,
                    customer=person,
                    channel="mobile"
                    if kind == "convenience" and rng.random() < 0.8
                    else rng.choice(["web", "web", "mobile", "pos"]),
                    shipping_method="Express 24h" if express else "Standard",
                    discount_codes=("TEA15",) if uses_code else (),
                    lines=tuple(lines),
                )
            )
    orders.sort(key=lambda order: order.placed_at)

    def ingest(batch: list[OrderData]) -> None:
        for chunk in range(0, len(batch), 2000):
            orders_ingest_many(merchant=merchant, orders=batch[chunk : chunk + 2000])

    nights = history_nights(start, end, merchant.zone)
    by_night: dict[datetime, list[OrderData]] = {at: [] for at in nights}
    ends = iter(by_night)
    night = next(ends)
    for order in orders:
        while order.placed_at > night:
            night = next(ends)
        by_night[night].append(order)
    demo_history_play(merchant=merchant, nights=by_night.items(), ingest=ingest)
    for name, description, offers, rules in PERSONAS:
        if not Persona.objects.filter(merchant=merchant, name=name).exists():
            persona_save(
                merchant=merchant, name=name, description=description, offers=offers, rules=rules
            )
    segments_and_personas_refresh(merchant=merchant)
    return [f"{size} demo customers with {len(orders)} orders for {merchant.slug}"]
