"""The PostgreSQL fast path of the segment and persona refresh against the portable one."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils.timezone import now

from customers import segments
from customers.models import Customer
from customers.personas import persona_save, segments_and_personas_refresh
from customers.services import (
    CustomerData,
    OrderData,
    OrderLineData,
    order_cancel,
    orders_ingest_many,
)
from tests.merchants.factories import MerchantFactory

pytestmark = [pytest.mark.django_db, pytest.mark.needs_postgres]

COLUMNS = (
    "external_id", "spent_last_365_days", "recency_score", "frequency_score", "monetary_score",
    "segment", "discount_order_share", "express_order_share", "main_channel", "top_category",
    "persona__name",
)  # fmt: skip
CLEARED = {
    "spent_last_365_days": 0, "recency_score": None, "frequency_score": None,
    "monetary_score": None, "segment": "", "discount_order_share": 0,
    "express_order_share": 0, "main_channel": "", "top_category": "", "persona": None,
}  # fmt: skip


def _shop_with_history():
    """Customers with ties in channel and category, codes without a discount amount,
    express spelled several ways, cancelled orders, old orders and no orders at all."""
    shop = MerchantFactory(base_currency="USD")
    rng = random.Random(7)
    orders = []
    for person in range(60):
        for number in range(rng.choice([0, 1, 1, 2, 3, 5, 9])):
            orders.append(
                OrderData(
                    source="api",
                    external_id=f"{person}-{number}",
                    placed_at=now() - timedelta(days=rng.randrange(900)),
                    total=Decimal(rng.choice(["10.00", "25.50", "80.00", "140.00"])),
                    discount=Decimal(rng.choice(["0", "0", "5.00"])),
                    discount_codes=rng.choice([(), (), ("SAVE",)]),
                    shipping_method=rng.choice(["Standard", "EXPRESS 24h", "Next-day", "Pickup"]),
                    channel=rng.choice(["web", "pos", "mobile", ""]),
                    currency="USD",
                    customer=CustomerData(external_id=f"p-{person}"),
                    lines=tuple(
                        OrderLineData(
                            sku=category, category=category, price=Decimal("5"), quantity=q
                        )
                        for category, q in rng.sample(
                            [("tea", 1), ("coffee", 1), ("gifts", 2), ("", 1)], 2
                        )
                    ),
                )
            )
    orders_ingest_many(merchant=shop, orders=orders)
    for order in orders[::7]:
        order_cancel(merchant=shop, source="api", external_id=order.external_id)
    for person in range(60, 65):  # signed up, never ordered
        Customer.objects.create(merchant=shop, external_id=f"p-{person}")
    rules = [
        ("Express", [{"field": "express_share", "op": "gte", "value": "50"}]),
        ("Deals", [{"field": "discount_share", "op": "gte", "value": "40"}]),
        ("Tea at the till", [{"field": "channel", "op": "eq", "value": "POS"},
                             {"field": "top_category", "op": "eq", "value": "tea"}]),
        ("Champions", [{"field": "segment", "op": "eq", "value": "champions"}]),
    ]  # fmt: skip
    for name, persona_rules in rules:
        persona_save(merchant=shop, name=name, description="", offers="", rules=persona_rules)
    return shop


def _outcome(shop) -> list[tuple]:
    return list(Customer.objects.filter(merchant=shop).order_by("id").values_list(*COLUMNS))


def test_fast_and_portable_refresh_agree(monkeypatch):
    shop = _shop_with_history()
    at = now()
    segments_and_personas_refresh(merchant=shop, at=at)
    fast = _outcome(shop)

    Customer.objects.filter(merchant=shop).update(**CLEARED)
    monkeypatch.setattr(segments, "FAST_PATH", False)
    segments_and_personas_refresh(merchant=shop, at=at)
    portable = _outcome(shop)

    assert fast == portable
    # The data really exercises what is compared.
    assert {row[5] for row in fast} >= {"champions", "lost", ""}
    assert {row[8] for row in fast} >= {"web", "pos", "mobile"}
    assert any(row[7] > 0 for row in fast)
    assert any(row[6] > 0 for row in fast)
    assert len({row[10] for row in fast}) >= 3


def test_a_second_refresh_with_nothing_new_writes_no_rows():
    from django.db import connection

    shop = _shop_with_history()
    at = now()
    segments_and_personas_refresh(merchant=shop, at=at)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n_tup_upd FROM pg_stat_xact_user_tables WHERE relname = %s",
            [Customer._meta.db_table],
        )
        before = cursor.fetchone()[0]
        segments.spent_refresh(merchant=shop, at=at)
        from customers.personas import behaviour_refresh

        behaviour_refresh(merchant=shop)
        cursor.execute(
            "SELECT n_tup_upd FROM pg_stat_xact_user_tables WHERE relname = %s",
            [Customer._meta.db_table],
        )
        assert cursor.fetchone()[0] == before
