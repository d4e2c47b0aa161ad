"""The typical gap between orders per segment (customers.metrics.typical_gap_days), on
customers whose gaps are worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from customers.metrics import TYPICAL_GAP_SAMPLE, typical_gap_days
from customers.models import Customer
from tests.customers.factories import CustomerFactory
from tests.merchants.factories import MerchantFactory

pytestmark = pytest.mark.django_db

FIRST = datetime(2026, 1, 1, tzinfo=UTC)


def _repeat(shop, segment, span_days, orders):
    last = FIRST + timedelta(days=span_days)
    return CustomerFactory(merchant=shop, segment=segment, orders_count=orders,
                           first_order_at=FIRST, last_order_at=last)  # fmt: skip


def test_each_segments_median_of_its_customers_own_average_gap():
    shop = MerchantFactory()
    # Loyal: ten customers 60 days over 4 orders (20 a gap), ten 38 days over 3 (19 a gap):
    # the median of twenty is between the 10th and 11th, (19 + 20) / 2 = 19.5.
    for _ in range(10):
        _repeat(shop, "loyal", 60, 4)
        _repeat(shop, "loyal", 38, 3)
    # At risk: 19 customers with a 50-day gap, one short of a sample of its own.
    for _ in range(TYPICAL_GAP_SAMPLE - 1):
        _repeat(shop, "at_risk", 50, 2)
    # One-time buyers and customers who never bought have no gap to count.
    CustomerFactory(merchant=shop, segment="loyal", orders_count=1, first_order_at=FIRST,
                    last_order_at=FIRST)  # fmt: skip
    CustomerFactory(merchant=shop)
    # Another shop's customers are not this one's.
    other = MerchantFactory()
    for _ in range(TYPICAL_GAP_SAMPLE):
        _repeat(other, "loyal", 300, 2)
    gaps = typical_gap_days(Customer.objects.filter(merchant=shop))
    # The whole shop: 10 at 19, 10 at 20, 19 at 50: the 20th of 39 is 20.
    assert gaps == {"loyal": 19.5, "": 20.0}


def test_a_shop_with_too_few_repeat_customers_has_no_typical_gap():
    shop = MerchantFactory()
    for _ in range(TYPICAL_GAP_SAMPLE - 1):
        _repeat(shop, "loyal", 30, 2)
    assert typical_gap_days(Customer.objects.filter(merchant=shop)) == {}
