"""Reads of customers and orders, always scoped by merchant."""

from __future__ import annotations

from customers.models import Customer
from merchants.models import Merchant


def customer_get_by_external_id(*, merchant: Merchant, external_id: str) -> Customer | None:
    return Customer.objects.filter(
        merchant=merchant, external_id=external_id, erased_at__isnull=True
    ).first()


def import_job_list(*, merchant: Merchant):
    from customers.models import ImportJob

    return ImportJob.objects.filter(merchant=merchant).select_related("created_by")


def import_job_get(*, merchant: Merchant, pk: int):
    from django.shortcuts import get_object_or_404

    return get_object_or_404(import_job_list(merchant=merchant), pk=pk)
