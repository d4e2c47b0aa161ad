"""Reads of customers and orders, always scoped by merchant."""

from __future__ import annotations

from customers.models import Customer
from merchants.models import Merchant


def customer_get_by_external_id(*, merchant: Merchant, external_id: str) -> Customer | None:
    return Customer.objects.filter(
        merchant=merchant, external_id=external_id, erased_at__isnull=True
    ).first()
