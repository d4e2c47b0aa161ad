from __future__ import annotations

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Sum

from customers.models import Activity, Customer, Order, OrderLine
from customers.services import CustomerData, customer_stats_refresh, order_ingest
from tests.customers.factories import order_data
from tests.merchants.factories import MerchantFactory

pytestmark = pytest.mark.django_db


def _stats(merchant):
    return list(
        Customer.objects.filter(merchant=merchant)
        .order_by("id")
        .values_list(
            "orders_count", "total_spent", "average_order_value", "first_order_at", "last_order_at"
        )
    )


def test_generated_data_is_consistent_and_the_shop_keeps_working():
    shop = MerchantFactory(base_currency="USD")
    order_ingest(merchant=shop, data=order_data("before", customer=CustomerData(external_id="x")))
    out = StringIO()

    call_command(
        "generate_dataset", merchant=shop.slug, customers=120, orders=700, seed=3, stdout=out
    )

    assert "120 customers, 700 orders" in out.getvalue()
    assert Customer.objects.filter(merchant=shop).count() == 121
    assert Order.objects.filter(merchant=shop).count() == 701
    assert Activity.objects.filter(merchant=shop, kind="order.placed").count() == 701
    lines_total = OrderLine.objects.filter(merchant=shop).count()
    assert 701 <= lines_total <= 3 * 700 + 1
    # Stats written by the generator equal what the services compute from the orders.
    written = _stats(shop)
    customer_stats_refresh(
        customer_ids=Customer.objects.filter(merchant=shop).values_list("id", flat=True)
    )
    refreshed = _stats(shop)
    if connection.vendor == "sqlite":
        # SQLite keeps decimals as binary floats: a half-cent average may round either way.
        assert [r[:2] + r[3:] for r in refreshed] == [w[:2] + w[3:] for w in written]
        pairs = zip(refreshed, written, strict=True)
        assert all(abs(r[2] - w[2]) <= Decimal("0.01") for r, w in pairs)
    else:
        assert refreshed == written
    assert Customer.objects.filter(merchant=shop).aggregate(s=Sum("orders_count"))["s"] == 701
    # Ids continue after the generated ones (sequences were moved on).
    after = order_ingest(
        merchant=shop, data=order_data("after", customer=CustomerData(external_id="y"))
    )
    assert after.created
    assert after.order.pk > Order.objects.exclude(pk=after.order.pk).order_by("-pk").first().pk


def test_the_same_seed_makes_the_same_shop():
    first, second = MerchantFactory(), MerchantFactory()
    call_command(
        "generate_dataset", merchant=first.slug, customers=30, orders=90, seed=9, stdout=StringIO()
    )
    call_command(
        "generate_dataset", merchant=second.slug, customers=30, orders=90, seed=9, stdout=StringIO()
    )
    spent = [
        list(
            Customer.objects.filter(merchant=m).order_by("id").values_list("total_spent", flat=True)
        )
        for m in (first, second)
    ]
    assert spent[0] == spent[1]


def test_generate_dataset_names_what_is_wrong():
    with pytest.raises(CommandError, match="No merchant"):
        call_command("generate_dataset", merchant="nope", customers=1, orders=1)
    with pytest.raises(CommandError, match="at least 1"):
        call_command("generate_dataset", merchant=MerchantFactory().slug, customers=0, orders=1)


@pytest.mark.needs_postgres
def test_rows_update_writes_what_bulk_update_would(monkeypatch):
    from datetime import timedelta

    from django.utils.timezone import now

    from customers import inserts
    from customers.models import Customer
    from tests.customers.factories import CustomerFactory

    customers = CustomerFactory.create_batch(4)
    for use_copy in (True, False):
        monkeypatch.setattr(inserts, "USE_COPY", use_copy)
        stamp = now() - timedelta(days=int(use_copy))
        for n, customer in enumerate(customers):
            customer.orders_count = n + (10 if use_copy else 20)
            customer.last_order_at = stamp if n % 2 else None
            customer.first_name = f"N{n}"
        inserts.rows_update(Customer, customers, ["orders_count", "last_order_at", "first_name"])
        stored = list(Customer.objects.order_by("pk").values_list(
            "orders_count", "last_order_at", "first_name"))  # fmt: skip
        assert stored == [(c.orders_count, c.last_order_at, c.first_name) for c in customers]
