"""Shop orders that carry a code, delivered as signed webhooks over real HTTP."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import pytest

from campaigns.models import CodeAttempt, CodeUse
from customers.models import Order
from merchants.api_keys import store_connection_create
from tests.campaigns.factories import CodeFactory, PromotionFactory
from tests.customers.test_webhooks import _payload, _post, _sign
from tests.merchants.factories import MerchantFactory
from tests.races import race

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def shop():
    return MerchantFactory(base_currency="USD")


@pytest.fixture
def deliver(live_server, shop):
    connection = store_connection_create(merchant=shop, platform="shopify")
    url = f"{live_server.url}/hooks/shopify/{connection.public_id}/"

    def send(payload, topic="orders/create"):
        body = json.dumps(payload).encode()
        return _post(url, body, {
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": _sign(connection.secret, body),
            "X-Shopify-Webhook-Id": str(uuid.uuid4()),
            "X-Shopify-Shop-Domain": "kashi-tea.myshopify.com",
        })  # fmt: skip

    return send


def _order(number: int, code: str) -> dict:
    payload = _payload("shopify_order.json")
    payload["id"] = 7000 + number
    payload["customer"] = {**payload["customer"], "id": 9000 + number,
                           "email": f"buyer{number}@example.test"}  # fmt: skip
    payload["email"] = payload["contact_email"] = f"buyer{number}@example.test"
    payload["discount_codes"] = [{"code": code, "amount": "6.00", "type": "fixed_amount"}]
    return payload


def test_a_shop_order_with_a_code_redeems_it_and_its_cancellation_gives_it_back(deliver, shop):
    promotion = PromotionFactory(merchant=shop, usage_limit=10, value=Decimal("6.00"))
    CodeFactory(promotion=promotion, code="SPRING6", single_use=False)

    assert deliver(_order(1, "spring6"))[1] == {"outcome": "order stored"}
    use = CodeUse.objects.get()
    assert (use.state, use.order.external_id) == ("redeemed", "7001")
    promotion.refresh_from_db()
    assert promotion.taken == 1

    cancelled = {**_order(1, "spring6"), "cancelled_at": "2026-05-02T09:00:00-04:00"}
    assert deliver(cancelled, topic="orders/cancelled")[1] == {"outcome": "cancelled"}
    promotion.refresh_from_db()
    assert (promotion.taken, CodeUse.objects.get().state) == (0, "rolled_back")


@pytest.mark.needs_postgres
def test_concurrent_orders_carrying_the_same_unique_code_redeem_it_once(deliver, shop):
    promotion = PromotionFactory(merchant=shop, usage_limit=100, value=Decimal("6.00"))
    CodeFactory(promotion=promotion, code="ONLY-ONCE", single_use=True)
    answers = []

    errors = race(lambda n: answers.append(deliver(_order(n, "ONLY-ONCE"))), 6)

    assert errors == []
    assert [status for status, _body in answers] == [200] * 6
    assert Order.objects.filter(merchant=shop).count() == 6  # every order stands
    assert CodeUse.objects.filter(state="redeemed").count() == 1
    promotion.refresh_from_db()
    assert promotion.taken == 1
    refused = CodeAttempt.objects.filter(accepted=False).values_list("reason", flat=True)
    assert list(refused) == ["code_used"] * 5
