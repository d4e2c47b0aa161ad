from __future__ import annotations

import json

import pytest

from campaigns.models import CodeAttempt, CodeUse
from merchants.api_keys import api_key_create
from tests.campaigns.factories import CodeFactory, PromotionFactory
from tests.customers.factories import CustomerFactory
from tests.merchants.factories import MerchantFactory

pytestmark = pytest.mark.django_db
CART = {"subtotal": "40.00", "shipping": "4.90", "lines": [{"sku": "TEA", "price": "20.00",
                                                            "quantity": 2}]}  # fmt: skip


def _api(client, merchant, scopes=("redeem",)):
    _key, raw = api_key_create(merchant=merchant, name="Checkout", scopes=list(scopes))

    def post(path, body=None, **headers):
        return client.post(f"/api/v1{path}", json.dumps(body or {}),
                           content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {raw}", **headers)  # fmt: skip

    return post


@pytest.fixture
def shop():
    shop = MerchantFactory(base_currency="USD")
    CustomerFactory(merchant=shop, external_id="ada")
    CustomerFactory(merchant=shop, external_id="bea")
    return shop


def test_a_checkout_validates_reserves_redeems_and_rolls_back_a_code(client, shop):
    code = CodeFactory(promotion=PromotionFactory(merchant=shop, usage_limit=1), code="GOLD15")
    post = _api(client, shop)
    body = {"customer": {"external_id": "ada"}, "cart": CART}
    said = post("/promotions/codes/gold15/validate", body).json()
    assert (said["accepted"], said["discount"], said["code"]) == (True, "5.00", "GOLD15")
    held = post("/promotions/codes/GOLD15/reserve", body).json()
    assert held["accepted"]
    assert held["reserved_until"]
    # Bea is told why not: Ada holds the only place.
    refused = post("/promotions/codes/GOLD15/validate",
                   {"customer": {"external_id": "bea"}, "cart": CART}).json()  # fmt: skip
    assert (refused["accepted"], refused["reason"]) == (False, "limit_reached")
    assert refused["message"]
    redeemed = post("/promotions/codes/GOLD15/redeem", {**body, "order_external_id": "1001"})
    assert redeemed.status_code == 200
    assert redeemed.json()["accepted"]
    assert CodeUse.objects.get().state == "redeemed"
    assert post("/promotions/orders/1001/rollback").json() == {"rolled_back": 1}
    assert post("/promotions/orders/1001/rollback").json() == {"rolled_back": 0}
    code.promotion.refresh_from_db()
    assert code.promotion.taken == 0
    actions = list(CodeAttempt.objects.order_by("id").values_list("action", "accepted"))
    assert actions[:4] == [("validate", True), ("reserve", True), ("validate", False),
                           ("redeem", True)]  # fmt: skip


def test_a_retry_with_the_same_idempotency_key_is_answered_from_the_first(client, shop):
    CodeFactory(promotion=PromotionFactory(merchant=shop), code="ONCE")
    post = _api(client, shop)
    body = {"customer": {"external_id": "ada"}, "cart": CART, "order_external_id": "1001"}
    first = post("/promotions/codes/ONCE/redeem", body, HTTP_IDEMPOTENCY_KEY="k-1")
    again = post("/promotions/codes/ONCE/redeem", body, HTTP_IDEMPOTENCY_KEY="k-1")
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert CodeUse.objects.count() == 1


def test_bad_bodies_name_the_field_and_write_nothing(client, shop):
    CodeFactory(promotion=PromotionFactory(merchant=shop), code="ONCE")
    post = _api(client, shop)
    answer = post("/promotions/codes/ONCE/redeem",
                  {"customer": {"external_id": "ada"}, "cart": {"subtotal": "-1"}})  # fmt: skip
    assert answer.status_code == 400
    assert {"cart.subtotal", "order_external_id"} <= set(answer.json()["errors"])
    assert post("/promotions/codes/ONCE/validate",
                {"customer": {"external_id": "zed"}, "cart": CART}).status_code == 404  # fmt: skip
    assert not CodeUse.objects.exists()


def test_another_merchants_key_and_codes_see_nothing_of_this_shop(client, shop):
    CodeFactory(promotion=PromotionFactory(merchant=shop), code="MINE")
    other = MerchantFactory()
    CustomerFactory(merchant=other, external_id="ada")
    theirs = _api(client, other)
    answer = theirs("/promotions/codes/MINE/validate",
                    {"customer": {"external_id": "ada"}, "cart": CART}).json()  # fmt: skip
    assert (answer["accepted"], answer["reason"], answer["promotion_id"]) == (
        False, "unknown_code", None)  # fmt: skip
    redeem = {"customer": {"external_id": "ada"}, "cart": CART, "order_external_id": "1"}
    assert theirs("/promotions/codes/MINE/redeem", redeem).json()["reason"] == "unknown_code"
    # A key without the redeem scope is refused.
    reader = _api(client, shop, scopes=("read",))
    check = {"customer": {"external_id": "ada"}, "cart": CART}
    assert reader("/promotions/codes/MINE/validate", check).status_code == 403
    assert not CodeUse.objects.exists()


def test_a_nul_character_anywhere_is_a_400_naming_the_field(client, shop):
    post = _api(client, shop)
    cart = {**CART, "other_codes": ["A\x00"]}
    answer = post("/promotions/codes/ONE/validate", {"customer": {"external_id": "ada"},
                                                     "cart": cart})  # fmt: skip
    assert answer.status_code == 400
    assert "cart.other_codes" in answer.json()["errors"]
    answer = post("/promotions/codes/ONE/validate", {"customer": {"external_id": "a\x00"},
                                                     "cart": CART})  # fmt: skip
    assert "customer.external_id" in answer.json()["errors"]


def test_the_checkouts_calls_cost_a_fixed_handful_of_statements(
    client, shop, django_assert_num_queries
):
    """The checkout's hot path, in round trips: the key and its shop, the customer, the
    code with its promotion, her and the code's live uses, the attempt; a redemption adds
    the order and writes the use, the guarded counters and the attempt in one transaction.
    Stale holds and eligibility facts are read only when a decision needs them."""
    promotion = PromotionFactory(merchant=shop, codes="unique", per_customer_limit=1)
    CodeFactory(promotion=promotion, code="BN-1", single_use=True)
    post = _api(client, shop)
    post("/promotions/codes/BN-1/validate", {"customer": {"external_id": "bea"}, "cart": CART})
    body = {"customer": {"external_id": "ada"}, "cart": CART}
    with django_assert_num_queries(6):
        said = post("/promotions/codes/BN-1/validate", body).json()
    assert said["accepted"]
    # In the test's own transaction the one of the redemption is a savepoint (2 more).
    with django_assert_num_queries(11):
        said = post("/promotions/codes/BN-1/redeem", {**body, "order_external_id": "9"}).json()
    assert said["accepted"]
    assert CodeUse.objects.get().state == "redeemed"
