from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils.timezone import now

from campaigns.models import CodeAttempt, CodeUse, Promotion, PromotionListEntry
from campaigns.services.codes import (
    Cart,
    CartLine,
    code_redeem,
    code_release,
    code_reserve,
    code_validate,
    codes_roll_back,
    promotion_counts,
    reservations_expire,
)
from campaigns.tasks import reservations_expire_task
from config.celery import beat_schedule
from customers.models import Segment
from customers.services import RefundData, order_cancel, order_ingest, refund_record
from tests.campaigns.factories import CodeFactory, PromotionFactory
from tests.customers.factories import CustomerFactory, order_data
from tests.loyalty.factories import ProgramFactory, TierFactory

CART = Cart(subtotal=Decimal("40.00"), shipping=Decimal("4.90"))


@pytest.fixture
def customer(merchant):
    return CustomerFactory(merchant=merchant)


def _code(merchant, **promotion):
    return CodeFactory(promotion=PromotionFactory(merchant=merchant, **promotion))


def _reason(merchant, code, customer, cart=CART) -> str:
    return code_validate(merchant=merchant, code=code.code, customer=customer, cart=cart).reason


def test_a_valid_code_answers_its_discount_by_kind(merchant, customer):
    cart = Cart(subtotal=Decimal("40.00"), shipping=Decimal("4.90"),
                lines=(CartLine("TEA-1", Decimal("12.00"), 2),))  # fmt: skip
    worth = {
        (Promotion.Kind.PERCENT, Decimal("15")): Decimal("6.00"),
        (Promotion.Kind.FIXED_AMOUNT, Decimal("50.00")): Decimal("40.00"),  # not below zero
        (Promotion.Kind.FREE_SHIPPING, Decimal("0")): Decimal("4.90"),
        (Promotion.Kind.FREE_PRODUCT, Decimal("0")): Decimal("12.00"),  # one unit
    }
    for (kind, value), expected in worth.items():
        code = _code(merchant, kind=kind, value=value, product_sku="TEA-1")
        answer = code_validate(merchant=merchant, code=code.code.lower() + " ", customer=customer,
                               cart=cart)  # fmt: skip
        assert (answer.accepted, answer.discount) == (True, expected), kind
    bonus = _code(merchant, kind=Promotion.Kind.BONUS_POINTS, bonus_points=200)
    answer = code_validate(merchant=merchant, code=bonus.code, customer=customer, cart=cart)
    assert (answer.discount, answer.bonus_points) == (Decimal("0.00"), 200)


def test_every_refusal_names_its_reason(merchant, customer):
    later, earlier = now() + timedelta(days=1), now() - timedelta(days=1)
    assert code_validate(merchant=merchant, code="NOPE", customer=customer,
                         cart=CART).reason == "unknown_code"  # fmt: skip
    assert _reason(merchant, _code(merchant, is_active=False), customer) == "inactive"
    assert _reason(merchant, _code(merchant, starts_at=later), customer) == "not_started"
    assert _reason(merchant, _code(merchant, ends_at=earlier), customer) == "expired"
    assert _reason(merchant, _code(merchant, min_spend=Decimal("50")), customer) == "min_spend"
    assert _reason(merchant, _code(merchant, kind=Promotion.Kind.FREE_PRODUCT,
                                   product_sku="POT"), customer) == "product_missing"  # fmt: skip
    bound = CodeFactory(promotion=PromotionFactory(merchant=merchant),
                        customer=CustomerFactory(merchant=merchant))  # fmt: skip
    assert _reason(merchant, bound, customer) == "not_yours"
    assert _reason(merchant, _code(merchant, usage_limit=0), customer) == "limit_reached"
    assert _reason(merchant, _code(merchant, budget=Decimal("4.99")), customer) == "budget_spent"
    attempts = CodeAttempt.objects.filter(merchant=merchant).order_by("id")
    reasons = attempts.values_list("reason", flat=True)
    assert list(reasons) == [
        "unknown_code", "inactive", "not_started", "expired", "min_spend", "product_missing",
        "not_yours", "limit_reached", "budget_spent",
    ]  # fmt: skip


def test_eligibility_by_segment_tier_list_and_one_customer(merchant, customer):
    other = CustomerFactory(merchant=merchant, segment=Segment.AT_RISK)
    at_risk = _code(merchant, eligibility=Promotion.Eligibility.SEGMENTS,
                    segments=[Segment.AT_RISK])  # fmt: skip
    assert _reason(merchant, at_risk, customer) == "not_eligible"
    assert _reason(merchant, at_risk, other) == ""
    ProgramFactory(merchant=merchant)
    gold = TierFactory(merchant=merchant, name="Gold")
    gold_only = _code(merchant, eligibility=Promotion.Eligibility.TIERS)
    gold_only.promotion.tiers.add(gold)
    assert _reason(merchant, gold_only, customer) == "not_eligible"
    from loyalty.models import PointsAccount

    PointsAccount.objects.create(merchant=merchant, customer=customer, tier=gold,
                                 confirmed_through=now(), referral_code="GOLD1")  # fmt: skip
    assert _reason(merchant, gold_only, customer) == ""
    listed = _code(merchant, eligibility=Promotion.Eligibility.LIST)
    PromotionListEntry.objects.create(promotion=listed.promotion, customer=other)
    assert (_reason(merchant, listed, customer), _reason(merchant, listed, other)) == (
        "not_eligible", "")  # fmt: skip
    one = _code(merchant, eligibility=Promotion.Eligibility.CUSTOMER, customer=other)
    assert (_reason(merchant, one, customer), _reason(merchant, one, other)) == ("not_eligible", "")


def test_an_exclusive_code_refuses_another_in_the_cart_and_names_it(merchant, customer):
    first, second = _code(merchant), _code(merchant, is_exclusive=False)
    cart = Cart(subtotal=Decimal("40.00"), other_codes=(second.code.lower(),))
    answer = code_validate(merchant=merchant, code=first.code, customer=customer, cart=cart)
    assert (answer.reason, answer.detail) == ("not_combinable", second.code)
    third = _code(merchant, is_exclusive=False)
    third.promotion.combinable_with.add(second.promotion)
    cart = Cart(subtotal=Decimal("40.00"), other_codes=(second.code,))
    assert code_validate(merchant=merchant, code=third.code, customer=customer, cart=cart).accepted


def test_a_reservation_holds_the_last_place_until_released(merchant, customer):
    code = CodeFactory(promotion=PromotionFactory(merchant=merchant, usage_limit=1),
                       single_use=False)  # fmt: skip
    rival = CustomerFactory(merchant=merchant)
    assert code_reserve(merchant=merchant, code=code.code, customer=customer, cart=CART).accepted
    assert _reason(merchant, code, rival) == "limit_reached"
    # Asking again renews her own hold rather than taking a second place.
    again = code_reserve(merchant=merchant, code=code.code, customer=customer, cart=CART)
    assert again.accepted
    assert CodeUse.objects.filter(state="reserved").count() == 1
    assert code_release(merchant=merchant, code=code.code, customer=customer).accepted
    assert code_release(merchant=merchant, code=code.code,
                        customer=customer).reason == "no_reservation"  # fmt: skip
    assert _reason(merchant, code, rival) == ""
    code.promotion.refresh_from_db()
    assert (code.promotion.taken, code.promotion.committed) == (0, Decimal("0.00"))


def test_an_expired_reservation_frees_its_place(merchant, customer):
    code = _code(merchant, usage_limit=1)
    rival = CustomerFactory(merchant=merchant)
    code_reserve(merchant=merchant, code=code.code, customer=customer, cart=CART)
    with time_machine.travel(now() + timedelta(minutes=16)):
        # The hold is over even before the hourly job runs: the next take frees it first.
        answer = code_redeem(merchant=merchant, code=code.code, customer=rival, cart=CART,
                             order_external_id="o-1")  # fmt: skip
        assert answer.accepted
        assert reservations_expire() == 0
    states = sorted(CodeUse.objects.values_list("state", flat=True))
    assert states == ["expired", "redeemed"]
    assert promotion_counts(promotion=code.promotion) == {"taken": 1, "committed": Decimal("5.00")}


def test_the_hourly_job_expires_reservations_past_their_hold(merchant, customer):
    codes = [_code(merchant) for _ in range(3)]
    for code in codes:
        code_reserve(merchant=merchant, code=code.code, customer=customer, cart=CART)
    with time_machine.travel(now() + timedelta(minutes=14)):
        assert reservations_expire() == 0
    with time_machine.travel(now() + timedelta(minutes=16)):
        assert reservations_expire() == 3
    for code in codes:
        code.promotion.refresh_from_db()
        assert code.promotion.taken == 0


def test_redeeming_turns_her_reservation_into_the_use_and_replays_the_same_order(
    merchant, customer
):
    code = _code(merchant, kind=Promotion.Kind.PERCENT, value=Decimal("10"))
    code_reserve(merchant=merchant, code=code.code, customer=customer, cart=CART)
    bigger = Cart(subtotal=Decimal("80.00"))
    first = code_redeem(merchant=merchant, code=code.code, customer=customer, cart=bigger,
                        order_external_id="o-7")  # fmt: skip
    again = code_redeem(merchant=merchant, code=code.code, customer=customer, cart=bigger,
                        order_external_id="o-7")  # fmt: skip
    assert (first.accepted, first.discount, again.use.pk) == (True, Decimal("8.00"), first.use.pk)
    assert CodeUse.objects.get().state == "redeemed"
    assert _reason(merchant, code, CustomerFactory(merchant=merchant)) == "code_used"
    assert promotion_counts(promotion=code.promotion) == {"taken": 1, "committed": Decimal("8.00")}
    code.promotion.refresh_from_db()
    assert (code.promotion.taken, code.promotion.committed) == (1, Decimal("8.00"))


def test_a_cancelled_order_gives_its_code_back_once(merchant, customer):
    code = _code(merchant, usage_limit=1)
    code_redeem(merchant=merchant, code=code.code, customer=customer, cart=CART,
                order_external_id="o-9")  # fmt: skip
    assert codes_roll_back(merchant=merchant, order_external_id="o-9") == 1
    assert codes_roll_back(merchant=merchant, order_external_id="o-9") == 0
    code.promotion.refresh_from_db()
    assert code.promotion.taken == 0
    # The code is single-use, but a rolled-back use no longer holds it.
    assert code_redeem(merchant=merchant, code=code.code, customer=customer, cart=CART,
                       order_external_id="o-10").accepted  # fmt: skip


def test_the_per_customer_limit_counts_her_live_uses(merchant, customer):
    promotion = PromotionFactory(merchant=merchant, per_customer_limit=2)
    public = CodeFactory(promotion=promotion, single_use=False)
    for number in (1, 2):
        assert code_redeem(merchant=merchant, code=public.code, customer=customer, cart=CART,
                           order_external_id=f"o-{number}").accepted  # fmt: skip
    third = code_redeem(merchant=merchant, code=public.code, customer=customer, cart=CART,
                        order_external_id="o-3")  # fmt: skip
    assert third.reason == "already_used"
    assert sorted(CodeUse.objects.values_list("slot", flat=True)) == [1, 2]


def test_a_unique_code_she_used_is_used_for_her_too_whatever_her_limit(merchant, customer):
    code = _code(merchant, per_customer_limit=3)
    code_redeem(merchant=merchant, code=code.code, customer=customer, cart=CART,
                order_external_id="o-1")  # fmt: skip
    assert _reason(merchant, code, customer) == "code_used"
    again = code_redeem(merchant=merchant, code=code.code, customer=customer, cart=CART,
                        order_external_id="o-2")  # fmt: skip
    assert again.reason == "code_used"


def test_another_merchants_code_is_unknown_here(merchant, other_merchant, customer):
    theirs = _code(other_merchant)
    assert _reason(merchant, theirs, customer) == "unknown_code"
    answer = code_redeem(merchant=merchant, code=theirs.code, customer=customer, cart=CART,
                         order_external_id="o-1")  # fmt: skip
    assert answer.reason == "unknown_code"
    assert not CodeUse.objects.exists()


def test_an_order_cancelled_or_refunded_in_full_through_customers_gives_its_code_back(
    merchant, customer
):
    promotion = PromotionFactory(merchant=merchant, usage_limit=2, per_customer_limit=2)
    code = CodeFactory(promotion=promotion, single_use=False)
    for number in (1, 2):
        order_ingest(merchant=merchant, data=order_data(f"o-{number}", total="40.00"))
        code_redeem(merchant=merchant, code=code.code, customer=customer, cart=CART,
                    order_external_id=f"o-{number}")  # fmt: skip
    order_cancel(merchant=merchant, source="api", external_id="o-1")
    code.promotion.refresh_from_db()
    assert code.promotion.taken == 1
    half = RefundData(source="api", external_id="r-1", order_external_id="o-2",
                      amount=Decimal("20.00"), refunded_at=now())  # fmt: skip
    refund_record(merchant=merchant, data=half)
    code.promotion.refresh_from_db()
    assert code.promotion.taken == 1  # a partial refund keeps the discount given
    rest = RefundData(source="api", external_id="r-2", order_external_id="o-2",
                      amount=Decimal("20.00"), refunded_at=now())  # fmt: skip
    refund_record(merchant=merchant, data=rest)
    code.promotion.refresh_from_db()
    assert (code.promotion.taken, code.promotion.committed) == (0, Decimal("0.00"))
    assert sorted(CodeUse.objects.values_list("state", flat=True)) == ["rolled_back"] * 2


def test_the_reservation_sweep_is_on_the_hourly_schedule_and_runs_as_a_task(merchant, customer):
    assert beat_schedule()["code-reservations-expire"]["task"] == (
        "campaigns.tasks.reservations_expire_task"
    )
    code = _code(merchant)
    code_reserve(merchant=merchant, code=code.code, customer=customer, cart=CART)
    with time_machine.travel(now() + timedelta(minutes=20)):
        reservations_expire_task.apply().get()
        reservations_expire_task.apply().get()
    assert CodeUse.objects.get().state == "expired"
    code.promotion.refresh_from_db()
    assert code.promotion.taken == 0


def test_eligibility_by_persona_and_by_a_live_membership(merchant, customer):
    from customers.models import Persona
    from loyalty.models import Membership, MembershipPlan

    busy = Persona.objects.create(merchant=merchant, name="Busy professional")
    for_busy = _code(merchant, eligibility=Promotion.Eligibility.PERSONAS)
    for_busy.promotion.personas.add(busy)
    assert _reason(merchant, for_busy, customer) == "not_eligible"
    customer.persona = busy
    customer.save(update_fields=["persona"])
    assert _reason(merchant, for_busy, customer) == ""
    plan = MembershipPlan.objects.create(merchant=merchant, name="Club", price=Decimal("9"),
                                         currency="USD", period="month")  # fmt: skip
    for_members = _code(merchant, eligibility=Promotion.Eligibility.MEMBERS)
    for_members.promotion.plans.add(plan)
    assert _reason(merchant, for_members, customer) == "not_eligible"
    membership = Membership.objects.create(
        merchant=merchant, customer=customer, plan=plan, state=Membership.State.ACTIVE,
        current_period_end=now() + timedelta(days=30),
    )  # fmt: skip
    assert _reason(merchant, for_members, customer) == ""
    membership.state = Membership.State.EXPIRED
    membership.save(update_fields=["state"])
    assert _reason(merchant, for_members, customer) == "not_eligible"


def test_a_stale_hold_stands_in_no_ones_way_not_even_its_own_customers(merchant, customer):
    single = CodeFactory(promotion=PromotionFactory(merchant=merchant, codes="unique"),
                         single_use=True)  # fmt: skip
    limited = _code(merchant, usage_limit=1)
    rival = CustomerFactory(merchant=merchant)
    for code in (single, limited):
        code_reserve(merchant=merchant, code=code.code, customer=customer, cart=CART)
    with time_machine.travel(now() + timedelta(minutes=16)):
        # A rival is told the last place is free once the hold is over, before the job runs.
        assert _reason(merchant, limited, rival) == ""
        # Her own single-use code, held too long, is hers to redeem again.
        answer = code_redeem(merchant=merchant, code=single.code, customer=customer, cart=CART,
                             order_external_id="o-9")  # fmt: skip
        assert (answer.accepted, answer.discount) == (True, Decimal("5.00"))
    states = sorted(CodeUse.objects.filter(code=single).values_list("state", flat=True))
    assert states == ["expired", "redeemed"]
    for code in (single, limited):
        code.promotion.refresh_from_db()
        counted = promotion_counts(promotion=code.promotion)
        assert (code.promotion.taken, code.promotion.committed) == tuple(counted.values())
