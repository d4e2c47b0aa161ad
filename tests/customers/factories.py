from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import factory
from django.utils.timezone import now

from customers.models import Customer
from customers.services import CustomerData, OrderData, OrderLineData
from tests.merchants.factories import MerchantFactory


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    merchant = factory.SubFactory(MerchantFactory)
    external_id = factory.Sequence(lambda n: f"cust-{n}")
    email = factory.Sequence(lambda n: f"customer{n}@example.test")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    created_at = factory.LazyFunction(now)
    updated_at = factory.LazyFunction(now)


def order_data(
    external_id: str,
    *,
    customer: CustomerData | None = None,
    total: str = "50.00",
    placed_at: datetime | None = None,
    currency: str = "USD",
    status: str = "paid",
    source: str = "api",
    lines: tuple[OrderLineData, ...] | None = None,
) -> OrderData:
    return OrderData(
        source=source,
        external_id=external_id,
        placed_at=placed_at or now(),
        total=Decimal(total),
        subtotal=Decimal(total),
        currency=currency,
        status=status,
        customer=customer or CustomerData(external_id="c-1", email="ada@example.test"),
        lines=lines
        if lines is not None
        else (
            OrderLineData(
                sku="TEA-1", name="Green tea", category="tea", quantity=2, price=Decimal(total) / 2
            ),
        ),
    )
