"""A reward's code and a promotion's code are one kind of code with one lookup; orders that
carry codes redeem them; a bonus-points promotion gives its points, and takes them back."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from campaigns.models import Code, CodeAttempt, CodeUse, Promotion
from campaigns.services.codes import Cart, CartLine, code_redeem, code_reserve, code_validate
from customers.models import Order
from customers.services import CustomerData, order_cancel, order_ingest
from customers.services.data import OrderLineData
from loyalty.models import PointsAccount, Redemption, Reward
from loyalty.services.ledger import account_for, points_adjust
from loyalty.services.rewards import redemption_use, reward_redeem
from tests.campaigns.factories import CodeFactory, PromotionFactory
from tests.customers.factories import CustomerFactory, order_data
from tests.loyalty.factories import ProgramFactory, RewardFactory
from tests.merchants.factories import UserFactory

CART = Cart(subtotal=Decimal("40.00"), shipping=Decimal("4.90"))
ADA = CustomerData(external_id="c-1", email="ada@example.test")


@pytest.fixture
def program(merchant):
    return ProgramFactory(merchant=merchant)


def _reward_code(merchant, customer, **reward) -> Redemption:
    account = account_for(customer=customer)
    staff = UserFactory()
    points_adjust(account=account, points=500, reason="Welcome", by=staff, key="fund")
    reward = RewardFactory(merchant=merchant, points_cost=100, **reward)
    redemption, _created = reward_redeem(account=account, reward=reward, key="k")
    return redemption


def _ingested(merchant, external_id, codes=(), **fields):
    data = order_data(external_id, customer=ADA, total=fields.pop("total", "40.00"), **fields)
    data = type(data)(**{**data.__dict__, "discount_codes": tuple(codes)})
    return order_ingest(merchant=merchant, data=data)


def test_a_reward_code_is_found_by_the_same_lookup_and_answers_the_rewards_terms(merchant, program):
    ada = CustomerFactory(merchant=merchant)
    bea = CustomerFactory(merchant=merchant)
    five_off = _reward_code(merchant, ada)
    assert Code.objects.get(code=five_off.code).redemption == five_off

    said = code_validate(merchant=merchant, code=five_off.code.lower(), customer=ada, cart=CART)
    assert (said.accepted, said.discount, said.promotion) == (True, Decimal("5.00"), None)
    theirs = code_validate(merchant=merchant, code=five_off.code, customer=bea, cart=CART)
    assert (theirs.accepted, theirs.reason) == (False, "not_yours")

    done = code_redeem(merchant=merchant, code=five_off.code, customer=ada, cart=CART,
                       order_external_id="o-1")  # fmt: skip
    assert (done.accepted, done.discount) == (True, Decimal("5.00"))
    five_off.refresh_from_db()
    assert five_off.state == Redemption.State.USED
    again = code_redeem(merchant=merchant, code=five_off.code, customer=ada, cart=CART,
                        order_external_id="o-2")  # fmt: skip
    assert (again.accepted, again.reason) == (False, "code_used")
    # loyalty/'s own endpoint sees the same use.
    with pytest.raises(Exception, match="already used"):
        redemption_use(merchant_id=merchant.pk, code=five_off.code, order=None)


def test_a_percent_reward_and_a_free_product_reward_are_priced_on_the_cart(merchant, program):
    ada = CustomerFactory(merchant=merchant)
    tenth = _reward_code(merchant, ada, kind=Reward.Kind.PERCENT, value=Decimal("10"))
    said = code_validate(merchant=merchant, code=tenth.code, customer=ada, cart=CART)
    assert said.discount == Decimal("4.00")

    bea = CustomerFactory(merchant=merchant)
    pot = _reward_code(merchant, bea, kind=Reward.Kind.FREE_PRODUCT, product_sku="POT")
    missing = code_validate(merchant=merchant, code=pot.code, customer=bea, cart=CART)
    assert (missing.reason, missing.detail) == ("product_missing", "POT")
    with_pot = Cart(subtotal=Decimal("40.00"), lines=(CartLine("POT", Decimal("12.50")),))
    assert code_validate(merchant=merchant, code=pot.code, customer=bea,
                         cart=with_pot).discount == Decimal("12.50")  # fmt: skip


def test_a_reward_code_used_through_loyalty_is_a_use_in_the_same_table(merchant, program):
    ada = CustomerFactory(merchant=merchant)
    redemption = _reward_code(merchant, ada)
    code_reserve(merchant=merchant, code=redemption.code, customer=ada, cart=CART)
    redemption_use(merchant_id=merchant.pk, code=redemption.code, order=None)
    use = CodeUse.objects.get(code__redemption=redemption)
    assert use.state == CodeUse.State.REDEEMED  # her reservation became the use
    said = code_validate(merchant=merchant, code=redemption.code, customer=ada, cart=CART)
    assert (said.accepted, said.reason) == (False, "code_used")


def test_a_cancelled_order_makes_a_reward_code_ready_again(merchant, program):
    order_ingest(merchant=merchant, data=order_data("o-1", customer=ADA))
    ada = Order.objects.get(external_id="o-1").customer
    redemption = _reward_code(merchant, ada)
    code_redeem(merchant=merchant, code=redemption.code, customer=ada, cart=CART,
                order_external_id="o-1")  # fmt: skip
    redemption.refresh_from_db()
    assert (redemption.state, redemption.used_order.external_id) == ("used", "o-1")
    order_cancel(merchant=merchant, source="api", external_id="o-1")
    redemption.refresh_from_db()
    assert (redemption.state, redemption.used_order) == ("issued", None)
    assert code_validate(merchant=merchant, code=redemption.code, customer=ada,
                         cart=CART).accepted  # fmt: skip


def test_a_promotion_code_cannot_take_a_reward_codes_letters(merchant, program):
    ada = CustomerFactory(merchant=merchant)
    redemption = _reward_code(merchant, ada)
    with pytest.raises(IntegrityError), transaction.atomic():
        CodeFactory(promotion=PromotionFactory(merchant=merchant), code=redemption.code)


def test_an_order_carrying_a_code_redeems_it_in_its_transaction_and_links_the_order(merchant):
    promotion = PromotionFactory(merchant=merchant, usage_limit=5, value=Decimal("6.00"))
    CodeFactory(promotion=promotion, code="SPRING6", single_use=False)

    _ingested(merchant, "o-1", codes=["spring6", "SHOPS-OWN-CODE"])

    use = CodeUse.objects.get()
    order = Order.objects.get(external_id="o-1")
    assert (use.state, use.order, use.discount) == ("redeemed", order, Decimal("6.00"))
    assert list(order.code_uses.all()) == [use]  # the link reports read
    promotion.refresh_from_db()
    assert promotion.taken == 1
    attempt = CodeAttempt.objects.get()
    assert (attempt.action, attempt.accepted, attempt.code) == ("redeem", True, "SPRING6")

    order_cancel(merchant=merchant, source="api", external_id="o-1")
    promotion.refresh_from_db()
    assert (promotion.taken, CodeUse.objects.get().state) == (0, "rolled_back")


def test_an_order_the_storefront_already_redeemed_for_is_linked_not_redeemed_again(merchant):
    promotion = PromotionFactory(merchant=merchant, usage_limit=1)
    CodeFactory(promotion=promotion, code="ONCE")
    ada = CustomerFactory(merchant=merchant, external_id="c-1", email="ada@example.test")
    code_redeem(merchant=merchant, code="ONCE", customer=ada, cart=CART, order_external_id="o-9")
    assert CodeUse.objects.get().order is None  # the order isn't here yet

    _ingested(merchant, "o-9", codes=["ONCE"])

    use = CodeUse.objects.get()
    assert use.order == Order.objects.get(external_id="o-9")
    promotion.refresh_from_db()
    assert promotion.taken == 1


def test_an_order_whose_code_is_refused_still_stands_and_the_refusal_is_logged(merchant):
    promotion = PromotionFactory(merchant=merchant, min_spend=Decimal("100.00"))
    CodeFactory(promotion=promotion, code="BIGSPEND")
    _ingested(merchant, "o-1", codes=["BIGSPEND"])
    assert Order.objects.filter(external_id="o-1").exists()
    assert not CodeUse.objects.exists()
    attempt = CodeAttempt.objects.get()
    assert (attempt.accepted, attempt.reason) == (False, "min_spend")


def test_an_order_without_codes_reads_nothing_of_campaigns(merchant):
    promotion = PromotionFactory(merchant=merchant)
    CodeFactory(promotion=promotion, code="UNUSED")
    _ingested(merchant, "o-0")  # the customer exists now
    with CaptureQueriesContext(connection) as captured:
        _ingested(merchant, "o-1")
    assert captured.captured_queries
    assert not any("campaigns_" in q["sql"] for q in captured.captured_queries)


def test_a_bonus_points_promotion_gives_its_points_once_and_a_cancel_takes_them_back(
    merchant, program
):
    promotion = PromotionFactory(merchant=merchant, kind=Promotion.Kind.BONUS_POINTS,
                                 bonus_points=250, value=Decimal("0"))  # fmt: skip
    CodeFactory(promotion=promotion, code="BONUS")
    lines = (OrderLineData(sku="TEA", name="Tea", category="tea", quantity=1,
                           price=Decimal("40.00")),)  # fmt: skip
    order_ingest(merchant=merchant, data=order_data("o-1", customer=ADA, lines=lines))
    ada = Order.objects.get(external_id="o-1").customer
    before = PointsAccount.objects.get(customer=ada).available

    done = code_redeem(merchant=merchant, code="BONUS", customer=ada, cart=CART,
                       order_external_id="o-1")  # fmt: skip
    replay = code_redeem(merchant=merchant, code="BONUS", customer=ada, cart=CART,
                         order_external_id="o-1")  # fmt: skip
    assert (done.accepted, done.bonus_points, replay.extra) == (True, 250, {"replayed": True})
    assert PointsAccount.objects.get(customer=ada).available == before + 250

    order_cancel(merchant=merchant, source="api", external_id="o-1")
    # The order's own points and the bonus both went back.
    assert PointsAccount.objects.get(customer=ada).available == 0
