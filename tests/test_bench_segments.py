"""The bench's segments scenario on a small shop: its hand-written SQL runs, and writes what
the refresh writes, customer for customer."""

from __future__ import annotations

import pytest

from bench.customers import Context, run_segments
from customers.dataset import dataset_generate
from customers.models import Customer
from tests.merchants.factories import MerchantFactory

pytestmark = [pytest.mark.needs_postgres, pytest.mark.django_db(transaction=True)]


def test_the_raw_sql_writes_what_the_refresh_writes_and_a_second_night_writes_nothing(
    monkeypatch,
):
    from customers import refresh

    monkeypatch.setattr(refresh, "CHUNK_SIZE", 150)  # a few chunks of a small shop
    shop = MerchantFactory(base_currency="USD")
    dataset_generate(merchant=shop, customers=600, orders=4_000, timeline=False)
    context = Context(merchant=shop, env={}, rounds=1, refresh_rounds=1, seconds=1, ingest_orders=0)

    (row,) = run_segments(context)

    assert "customer (checked by a digest of the rows after each run)" in row.notes[-1]
    assert "ours wrote 0 rows" in row.notes[1]
    # The shop exercises what the digest compares.
    customers = Customer.objects.filter(merchant=shop)
    assert customers.exclude(persona=None).values("persona").distinct().count() == 3
    assert customers.values("segment").distinct().count() >= 8
