"""The staff pages' bare views in the bench (bench/urls.py, bench/dashboard.py) draw the
very pages the product draws, byte for byte but for the CSRF token and the CSP nonce: the
customer list (its count, each row's points and tier in the reader's language) and the
dashboard."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.conf import settings

from customers.services import CustomerData, order_ingest
from tests.customers.factories import order_data
from tests.loyalty.factories import ProgramFactory, TierFactory
from tests.test_bench_rewards_page import _same

pytestmark = [pytest.mark.needs_postgres, pytest.mark.django_db, pytest.mark.urls("bench.urls")]


@pytest.mark.parametrize("language", ["en", "ar"])
@pytest.mark.parametrize("query", ["", "?sort=spent", "?q=ra", "?segment=champions"])
def test_the_bare_customer_list_draws_the_same_page(owner_client, merchant, language, query):
    ProgramFactory(merchant=merchant)
    TierFactory(merchant=merchant, name="Silver", name_ar="الفضي", threshold=Decimal("100"))
    for n, (name, total) in enumerate([("Rana", "320.00"), ("Omid", "20.00"), ("Vera", "150")]):
        person = CustomerData(external_id=f"c{n}", email=f"c{n}@example.test", first_name=name)
        order_ingest(merchant=merchant, data=order_data(f"A-{n}", customer=person, total=total))
    owner_client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    product = owner_client.get(f"/customers/{query}").content.decode()
    bare = owner_client.get(f"/bench/bare/{merchant.pk}/customers/{query}").content.decode()
    if not query:
        assert ("الفضي" if language == "ar" else "Silver") in product
        assert 'data-testid="customer-count">3 ' in product
    assert _same(bare) == _same(product)


def test_the_bare_dashboard_draws_the_same_page(owner_client, merchant):
    product = owner_client.get("/").content.decode()
    bare = owner_client.get(f"/bench/bare/{merchant.pk}/dashboard/").content.decode()
    assert 'data-testid="coming"' in product  # the parts still being built say so
    assert _same(bare) == _same(product)


def _blank(text: str) -> str:
    from bench.harness import _PER_ANSWER

    for pattern, blank in _PER_ANSWER:
        text = pattern.sub(blank, text)
    return text


@pytest.mark.parametrize("language", ["en", "fa"])
def test_the_other_bare_staff_pages_draw_the_same_pages(owner_client, merchant, language):
    """The customer 360, both dashboard panels, the inbox and a ticket, as the bench asks
    for them (bench/customers.py's pages scenario, the dashboard and the inbox)."""
    from customers.models import Customer
    from feedback.models import Channel, Kind
    from feedback.services.intake import feedback_submit

    ProgramFactory(merchant=merchant)
    TierFactory(merchant=merchant, name="Silver", name_fa="نقره‌ای", threshold=Decimal("100"))
    person = CustomerData(external_id="rana", email="rana@example.test", first_name="Rana")
    order_ingest(merchant=merchant, data=order_data("A-1", customer=person, total="320.00"))
    customer = Customer.objects.get(merchant=merchant, external_id="rana")
    ticket = feedback_submit(merchant=merchant, customer=customer, channel=Channel.PORTAL,
                             kind=Kind.QUESTION, subject="Late", body="Where?")  # fmt: skip
    owner_client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    bare = f"/bench/bare/{merchant.pk}"
    for ours, theirs in (
        (f"/customers/{customer.pk}/", f"{bare}/customers/{customer.pk}/"),
        ("/loyalty/figures/", f"{bare}/dashboard/loyalty/"),
        ("/feedback/figures/", f"{bare}/dashboard/feedback/"),
        ("/feedback/", f"{bare}/feedback/"),
        (f"/feedback/{ticket.pk}/", f"{bare}/feedback/{ticket.pk}/"),
    ):
        product, baseline = owner_client.get(ours), owner_client.get(theirs)
        assert (product.status_code, baseline.status_code) == (200, 200), ours
        assert _blank(baseline.content.decode()) == _blank(product.content.decode()), ours
