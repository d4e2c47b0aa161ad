from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils.timezone import now

from customers.models import Activity
from customers.services import (
    CustomerData,
    OrderLineData,
    RefundData,
    event_record,
    order_cancel,
    order_ingest,
    orders_ingest_many,
    refund_record,
)
from loyalty.models import EarningRule, PointsAccount, PointsEntry, Program, TierChange
from loyalty.services.expiry import pending_confirm
from loyalty.services.rewards import reward_redeem
from tests.customers.factories import order_data
from tests.loyalty.factories import EarningRuleFactory, ProgramFactory, RewardFactory, TierFactory
from tests.loyalty.helpers import ledger_matches

pytestmark = pytest.mark.django_db
ADA = CustomerData(external_id="ada", email="ada@example.test")


def _account() -> PointsAccount:
    return PointsAccount.objects.get(customer__external_id="ada")


def _line(sku: str, price: str, quantity: int = 1, category: str = "tea") -> OrderLineData:
    return OrderLineData(sku=sku, name=sku, category=category, quantity=quantity,
                         price=Decimal(price))  # fmt: skip


def test_no_program_no_points(merchant):
    order_ingest(merchant=merchant, data=order_data("o-1", customer=ADA))
    assert not PointsAccount.objects.exists()


def test_an_order_earns_pending_points_that_become_available_after_the_window(merchant):
    ProgramFactory(merchant=merchant, pending_days=30, points_per_unit=Decimal("2"))
    order_ingest(merchant=merchant, data=order_data("o-1", customer=ADA, total="42.50"))

    account = _account()
    assert (account.available, account.pending) == (0, 85)
    earn = account.entries.get()
    assert earn.kind == PointsEntry.Kind.EARN
    assert earn.order.external_id == "o-1"

    assert pending_confirm(merchant_id=merchant.pk) == 0
    with time_machine.travel(now() + timedelta(days=31)):
        assert pending_confirm(merchant_id=merchant.pk) == 1
        assert pending_confirm(merchant_id=merchant.pk) == 0
    account.refresh_from_db()
    assert (account.available, account.pending) == (85, 0)
    assert ledger_matches(account)


def test_the_base_leaves_out_shipping_tax_and_excluded_skus(merchant):
    ProgramFactory(merchant=merchant, excluded_skus=["GIFT"])
    data = order_data("o-1", customer=ADA, total="70.00", lines=(
        _line("TEA", "40.00"), _line("GIFT", "20.00")))  # fmt: skip
    data = type(data)(**{**data.__dict__, "shipping": Decimal("6.00"), "tax": Decimal("4.00")})
    order_ingest(merchant=merchant, data=data)
    # Base 70 - 6 - 4 = 60, spread over the lines by price: the gift card's third earns nothing.
    assert _account().available == 40


def test_the_best_multiplier_wins_per_line_and_bonuses_add(merchant):
    ProgramFactory(merchant=merchant)
    EarningRuleFactory(merchant=merchant, kind=EarningRule.Kind.CAMPAIGN_MULTIPLIER,
                       multiplier=Decimal("2"), name="Double days")  # fmt: skip
    EarningRuleFactory(merchant=merchant, kind=EarningRule.Kind.CATEGORY_MULTIPLIER,
                       category="coffee", multiplier=Decimal("3"), name="Coffee x3")  # fmt: skip
    EarningRuleFactory(merchant=merchant, kind=EarningRule.Kind.CAMPAIGN_MULTIPLIER,
                       multiplier=Decimal("5"), ends_at=now() - timedelta(days=1),
                       name="Over")  # fmt: skip
    EarningRuleFactory(merchant=merchant, kind=EarningRule.Kind.FIRST_ORDER, points=50,
                       name="Welcome")  # fmt: skip
    EarningRuleFactory(merchant=merchant, kind=EarningRule.Kind.PRODUCT_BONUS, sku="POT",
                       points=25, name="Teapot bonus")  # fmt: skip
    lines = (_line("TEA", "10.00"), _line("BEAN", "10.00", category="coffee"))
    order_ingest(merchant=merchant, data=order_data("o-1", customer=ADA, total="20.00",
                 lines=lines, placed_at=now() - timedelta(hours=1)))  # fmt: skip
    # Tea x2 = 20, coffee x3 = 30, first order +50.
    assert _account().available == 100
    order_ingest(merchant=merchant, data=order_data(
        "o-2", customer=ADA, total="10.00",
        lines=(_line("POT", "10.00", category="teaware"),)))  # fmt: skip
    # Second order: x2 = 20, no welcome bonus again, teapot +25.
    assert _account().available == 145
    assert "Teapot bonus" in _account().entries.latest("pk").note


def test_a_batch_earns_the_same_as_one_by_one(merchant, other_merchant):
    for shop in (merchant, other_merchant):
        ProgramFactory(merchant=shop, points_per_unit=Decimal("1.5"), rounding="nearest")
        EarningRuleFactory(merchant=shop, kind=EarningRule.Kind.FIRST_ORDER, points=10)
        TierFactory(merchant=shop, name="Silver", threshold=Decimal("40"))
        TierFactory(merchant=shop, name="Gold", threshold=Decimal("45"))
    batch = [
        order_data(f"b-{n}", total=f"{11 + n}.33", placed_at=now() - timedelta(days=n),
                   customer=CustomerData(external_id=f"c-{n % 3}"))
        for n in range(9)
    ]  # fmt: skip
    orders_ingest_many(merchant=merchant, orders=batch)
    for data in batch:
        order_ingest(merchant=other_merchant, data=data)

    def balances(shop):
        return sorted(PointsAccount.objects.filter(merchant=shop).values_list(
            "customer__external_id", "available", "pending", "tier__name"))  # fmt: skip

    assert balances(merchant) == balances(other_merchant)
    assert {tier for *_rest, tier in balances(merchant)} == {"Silver", "Gold"}
    # Nine orders, and one welcome bonus for each of the three customers.
    assert PointsEntry.objects.filter(merchant=merchant).count() == 12


def test_a_refund_takes_back_points_in_proportion(merchant):
    ProgramFactory(merchant=merchant)
    order_ingest(merchant=merchant, data=order_data("o-1", customer=ADA, total="100.00"))
    refund_record(merchant=merchant, data=RefundData(
        source="api", external_id="r-1", order_external_id="o-1", amount=Decimal("25.00"),
        refunded_at=now()))  # fmt: skip
    account = _account()
    assert account.available == 75
    reversal = account.entries.get(kind=PointsEntry.Kind.REVERSE)
    assert reversal.reverses.kind == PointsEntry.Kind.EARN
    refund_record(merchant=merchant, data=RefundData(
        source="api", external_id="r-1", order_external_id="o-1", amount=Decimal("25.00"),
        refunded_at=now()))  # fmt: skip
    assert _account().available == 75  # the same refund again changes nothing
    order_cancel(merchant=merchant, source="api", external_id="o-1")
    assert _account().available == 0
    assert ledger_matches(_account())


@pytest.mark.parametrize(
    ("policy", "left"),
    [(Program.RefundPolicy.AVAILABLE_ONLY, 0), (Program.RefundPolicy.ALLOW_NEGATIVE, -80)],
)
def test_a_refund_of_spent_points_follows_the_merchants_policy(merchant, policy, left):
    ProgramFactory(merchant=merchant, refund_policy=policy)
    order_ingest(merchant=merchant, data=order_data("o-1", customer=ADA, total="100.00"))
    reward_redeem(account=_account(), reward=RewardFactory(merchant=merchant, points_cost=80),
                  key="k")  # fmt: skip
    refund_record(merchant=merchant, data=RefundData(
        source="api", external_id="r-1", order_external_id="o-1", amount=Decimal("100.00"),
        refunded_at=now()))  # fmt: skip
    assert _account().available == left
    assert ledger_matches(_account())


def test_a_refund_while_points_are_pending_shrinks_the_pending_lot(merchant):
    ProgramFactory(merchant=merchant, pending_days=30)
    order_ingest(merchant=merchant, data=order_data("o-1", customer=ADA, total="60.00"))
    refund_record(merchant=merchant, data=RefundData(
        source="api", external_id="r-1", order_external_id="o-1", amount=Decimal("30.00"),
        refunded_at=now()))  # fmt: skip
    account = _account()
    assert (account.available, account.pending) == (0, 30)
    with time_machine.travel(now() + timedelta(days=31)):
        pending_confirm(merchant_id=merchant.pk)
    account.refresh_from_db()
    assert (account.available, account.pending) == (30, 0)


def test_event_points_respect_the_daily_limit(merchant):
    ProgramFactory(merchant=merchant)
    EarningRuleFactory(merchant=merchant, kind=EarningRule.Kind.EVENT, event="review",
                       points=20, limit_count=2, limit_per=EarningRule.Per.DAY)  # fmt: skip
    for _ in range(3):
        event_record(merchant=merchant, customer=ADA, key="review", source="api")
    assert _account().available == 40
    with time_machine.travel(now() + timedelta(days=1)):
        event_record(merchant=merchant, customer=ADA, key="review", source="api")
    assert _account().available == 60
    event_record(merchant=merchant, customer=ADA, key="unknown-key", source="api")
    assert _account().available == 60


def test_an_order_crossing_a_threshold_upgrades_at_once(merchant):
    ProgramFactory(merchant=merchant)
    TierFactory(merchant=merchant, name="Silver", threshold=Decimal("100"))
    gold = TierFactory(merchant=merchant, name="Gold", threshold=Decimal("300"))
    order_ingest(merchant=merchant, data=order_data("o-1", customer=ADA, total="120.00"))
    assert _account().tier.name == "Silver"
    order_ingest(merchant=merchant, data=order_data("o-2", customer=ADA, total="200.00"))
    account = _account()
    assert account.tier == gold
    assert [c.to_tier.name for c in account.tier_changes.order_by("pk")] == ["Silver", "Gold"]


def _earned(external_id: str) -> int:
    return PointsEntry.objects.get(
        order__external_id=external_id, kind=PointsEntry.Kind.EARN
    ).points


def test_an_earning_rule_change_counts_from_the_next_order(merchant):
    # Orders read the rules from the shop's cached catalog: a change must move it on.
    ProgramFactory(merchant=merchant, pending_days=30, points_per_unit=Decimal("1"))
    order_ingest(merchant=merchant, data=order_data("o-1", customer=ADA, total="10.00"))
    rule = EarningRuleFactory(merchant=merchant, multiplier=Decimal("3"))
    order_ingest(merchant=merchant, data=order_data("o-2", customer=ADA, total="10.00"))
    rule.is_active = False
    rule.save()
    order_ingest(merchant=merchant, data=order_data("o-3", customer=ADA, total="10.00"))
    rule.delete()
    EarningRuleFactory(merchant=merchant, multiplier=Decimal("2"))
    order_ingest(merchant=merchant, data=order_data("o-4", customer=ADA, total="10.00"))
    assert [_earned(f"o-{n}") for n in (1, 2, 3, 4)] == [10, 30, 10, 20]


def test_a_returning_customers_order_with_a_running_program_has_a_fixed_statement_count(
    merchant, django_assert_num_queries
):
    ProgramFactory(merchant=merchant, pending_days=30, points_per_unit=Decimal("1"))
    order_ingest(merchant=merchant, data=order_data("o-1", customer=ADA, total="10.00"))
    # Savepoint, customer find (locked), stats, order, lines; account lock, pending
    # catch-up, entry, balances; the timeline (the order placed, the points earned) in one
    # insert; savepoint release. No rules, tiers or plans read: the catalog has them; no
    # tiers, so no basis value either.
    with django_assert_num_queries(11):
        order_ingest(merchant=merchant, data=order_data("o-2", customer=ADA, total="10.00"))


def test_a_new_customers_first_order_opens_the_account_in_one_statement(
    merchant, django_assert_num_queries
):
    # The customer is created in the order's own transaction, so nothing can be there to
    # look for: no account, no pending points to bring up, no first-order bonus already
    # given, no referral naming her.
    ProgramFactory(merchant=merchant, pending_days=30, points_per_unit=Decimal("1"))
    EarningRuleFactory(merchant=merchant, kind=EarningRule.Kind.FIRST_ORDER, points=50,
                       multiplier=Decimal("1"))  # fmt: skip
    order_ingest(
        merchant=merchant,
        data=order_data("o-0", customer=CustomerData(external_id="bea"), total="10.00"),
    )  # fmt: skip  (the catalog is read and kept)
    # Savepoint, customer find (none), customer, order, lines; the account opened with its
    # balance, the entries (earned, first-order bonus); the timeline (her creation, the
    # order, the points) in one insert; release.
    with django_assert_num_queries(9):
        order_ingest(merchant=merchant, data=order_data("o-1", customer=ADA, total="10.00"))
    account = _account()
    assert (account.available, account.pending) == (0, 60)
    assert ledger_matches(account)
    assert account.referral_code


@pytest.mark.parametrize("basis", ["spent", "orders", "points"])
def test_a_new_customers_tier_comes_from_the_order_in_hand_without_reading_the_basis(
    merchant, django_assert_num_queries, basis
):
    # Her only order is the one being stored: the basis is counted from it (or from the
    # points it earns, available at once here), not read.
    ProgramFactory(merchant=merchant, pending_days=0, points_per_unit=Decimal("1"),
                   tier_basis=basis)  # fmt: skip
    for name, threshold in (("Bronze", "1"), ("Silver", "2"), ("Gold", "100")):
        TierFactory(merchant=merchant, name=name, threshold=Decimal(threshold))
    order_ingest(
        merchant=merchant,
        data=order_data("o-0", customer=CustomerData(external_id="bea"), total="10.00"),
    )  # fmt: skip  (the catalog is read and kept)
    # Savepoint, customer find (none), customer, order, lines, the account, the entry;
    # the move (the account's tier, its history); the timeline; release.
    with django_assert_num_queries(11):
        order_ingest(merchant=merchant, data=order_data("o-1", customer=ADA, total="60.00"))
    account = _account()
    # 60.00 spent (or 60 points) reaches Silver; one order, Bronze.
    first = "Bronze" if basis == "orders" else "Silver"
    assert account.tier.name == first
    assert [c.to_tier.name for c in TierChange.objects.filter(account=account)] == [first]
    kinds = Activity.objects.filter(customer=account.customer).order_by("id")
    assert list(kinds.values_list("kind", flat=True)) == [
        "profile.created", "order.placed", "points.earned", "tier.changed"
    ]  # fmt: skip
    # Her next order reads what the database holds of her: 105.00 spent, 105 points, or
    # two orders.
    order_ingest(merchant=merchant, data=order_data("o-2", customer=ADA, total="45.00"))
    account.refresh_from_db()
    assert account.tier.name == ("Silver" if basis == "orders" else "Gold")


def test_a_referral_code_clash_on_a_new_account_stores_the_order_once_with_a_fresh_code(
    merchant, monkeypatch
):
    ProgramFactory(merchant=merchant, pending_days=30, points_per_unit=Decimal("1"))
    order_ingest(merchant=merchant, data=order_data("o-0", customer=CustomerData(
        external_id="bea"), total="10.00"))  # fmt: skip
    taken = PointsAccount.objects.get(customer__external_id="bea").referral_code
    from loyalty.services import ledger

    drawn = iter([taken])
    real = ledger.code_make
    monkeypatch.setattr(ledger, "code_make", lambda length: next(drawn, None) or real(length))
    result = order_ingest(merchant=merchant, data=order_data("o-1", customer=ADA, total="10.00"))
    assert result.created
    account = _account()
    assert account.referral_code not in ("", taken)
    assert (account.pending, PointsEntry.objects.filter(account=account).count()) == (10, 1)
    assert ledger_matches(account)
