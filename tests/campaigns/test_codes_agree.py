"""For any promotion, cart and customer, what validate answers is what redeem does."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils.timezone import now
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaigns.models import Code, Promotion
from campaigns.services.codes import REASONS, Cart, CartLine, code_redeem, code_validate
from customers.models import Segment
from tests.customers.factories import CustomerFactory
from tests.merchants.factories import MerchantFactory

money = st.decimals(min_value=0, max_value=200, places=2)
promotions = st.fixed_dictionaries({
    "kind": st.sampled_from(Promotion.Kind.values),
    "value": st.decimals(min_value=0, max_value=100, places=2),
    "product_sku": st.sampled_from(["", "TEA", "POT"]),
    "min_spend": money,
    "usage_limit": st.none() | st.integers(0, 3),
    "per_customer_limit": st.integers(1, 2),
    "budget": st.none() | money,
    "is_exclusive": st.booleans(),
    "is_active": st.booleans(),
    "window": st.sampled_from(["open", "later", "over"]),
    "eligibility": st.sampled_from(["everyone", "segments", "customer"]),
    "single_use": st.booleans(),
    "bound": st.booleans(),
})  # fmt: skip
carts = st.builds(
    Cart,
    subtotal=money,
    shipping=st.decimals(min_value=0, max_value=10, places=2),
    lines=st.lists(st.builds(CartLine, st.sampled_from(["TEA", "MUG"]), money,
                             st.integers(1, 3)), max_size=2).map(tuple),
    other_codes=st.sampled_from([(), ("OTHER",)]),
)  # fmt: skip


@pytest.mark.django_db
@settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(shape=promotions, shopping=st.lists(st.tuples(carts, st.integers(0, 2)), min_size=1,
                                           max_size=5))  # fmt: skip
def test_validate_and_redeem_agree_and_every_refusal_names_its_reason(shape, shopping):
    with transaction.atomic():
        merchant = MerchantFactory()
        people = [CustomerFactory(merchant=merchant, segment=segment)
                  for segment in (Segment.AT_RISK, Segment.LOYAL, "")]  # fmt: skip
        window = shape.pop("window")
        starts = {"later": now() + timedelta(days=1)}.get(window)
        ends = {"over": now() - timedelta(days=1)}.get(window)
        eligibility, single, bound = (shape.pop(k) for k in ("eligibility", "single_use", "bound"))
        promotion = Promotion.objects.create(
            merchant=merchant, name="P", codes="unique", starts_at=starts, ends_at=ends,
            eligibility=eligibility, segments=[Segment.AT_RISK], customer=people[0], **shape,
        )  # fmt: skip
        owner = people[1] if bound else None
        Code.objects.create(merchant=merchant, promotion=promotion, code="TRY",
                            single_use=single, customer=owner)  # fmt: skip
        other = Promotion.objects.create(merchant=merchant, name="O", codes="public",
                                         kind="percent", is_exclusive=False)  # fmt: skip
        Code.objects.create(merchant=merchant, promotion=other, code="OTHER", single_use=False)
        for number, (cart, who) in enumerate(shopping):
            customer = people[who]
            said = code_validate(merchant=merchant, code="try", customer=customer, cart=cart)
            done = code_redeem(merchant=merchant, code="try", customer=customer, cart=cart,
                               order_external_id=f"o-{number}")  # fmt: skip
            assert (done.accepted, done.reason, done.discount) == (
                said.accepted, said.reason, said.discount
            )  # fmt: skip
            if said.accepted:
                assert Decimal(0) <= said.discount <= cart.subtotal + cart.shipping
            else:
                assert said.reason in REASONS
            promotion.refresh_from_db()
            if promotion.budget is not None:
                assert promotion.committed <= promotion.budget
            if promotion.usage_limit is not None:
                assert promotion.taken <= promotion.usage_limit
        transaction.set_rollback(True)
