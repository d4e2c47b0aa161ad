from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from loyalty.models import PointsEntry, Redemption, Reward
from loyalty.services.rewards import redemption_use, reward_redeem
from tests.loyalty.factories import ProgramFactory, RewardFactory, TierFactory
from tests.loyalty.helpers import account_with, ledger_matches, ledger_sum

pytestmark = pytest.mark.django_db


@pytest.fixture
def program(merchant):
    return ProgramFactory(merchant=merchant)


def test_redeeming_spends_the_points_and_issues_a_code(program):
    account = account_with(program.merchant, 500)
    reward = RewardFactory(merchant=program.merchant, points_cost=200, value=Decimal("10.00"))

    redemption, created = reward_redeem(account=account, reward=reward, key="click-1")

    assert created
    account.refresh_from_db()
    assert account.available == 300
    assert ledger_sum(account) == 300
    assert ledger_matches(account)
    assert len(redemption.code) == 10
    assert not set(redemption.code) & set("01ILO")
    assert redemption.amount == Decimal("10.00")
    assert redemption.entry.points == -200


def test_the_same_click_twice_spends_once(program):
    account = account_with(program.merchant, 500)
    reward = RewardFactory(merchant=program.merchant, points_cost=200)

    first, _ = reward_redeem(account=account, reward=reward, key="click-1")
    again, created = reward_redeem(account=account, reward=reward, key="click-1")

    assert not created
    assert again.pk == first.pk
    account.refresh_from_db()
    assert account.available == 300
    assert Redemption.objects.count() == 1


def test_not_enough_points_is_refused_and_writes_nothing(program):
    account = account_with(program.merchant, 150)
    reward = RewardFactory(merchant=program.merchant, points_cost=200)

    with pytest.raises(ValidationError, match="Not enough points"):
        reward_redeem(account=account, reward=reward, key="k")

    account.refresh_from_db()
    assert account.available == 150
    assert not Redemption.objects.exists()
    assert account.entries.filter(kind=PointsEntry.Kind.REDEEM).count() == 0


def test_stock_and_per_customer_limit_hold(program):
    reward = RewardFactory(merchant=program.merchant, points_cost=10, stock=1)
    first = account_with(program.merchant, 100)
    second = account_with(program.merchant, 100)
    reward_redeem(account=first, reward=reward, key="a")
    with pytest.raises(ValidationError, match="out of stock"):
        reward_redeem(account=second, reward=reward, key="b")
    second.refresh_from_db()
    assert second.available == 100

    limited = RewardFactory(merchant=program.merchant, points_cost=10, per_customer_limit=1)
    reward_redeem(account=second, reward=limited, key="c")
    with pytest.raises(ValidationError, match="already redeemed"):
        reward_redeem(account=second, reward=limited, key="d")
    second.refresh_from_db()
    assert second.available == 90


def test_points_for_an_amount_the_customer_chooses(program):
    account = account_with(program.merchant, 1000)
    reward = RewardFactory(
        merchant=program.merchant, kind=Reward.Kind.POINTS_FOR_AMOUNT, points_cost=100, max_units=5
    )
    redemption, _ = reward_redeem(account=account, reward=reward, key="k", units=3)
    assert (redemption.points, redemption.amount) == (300, Decimal("3.00"))
    with pytest.raises(ValidationError, match="At most 5"):
        reward_redeem(account=account, reward=reward, key="k2", units=6)


def test_a_tier_only_reward_is_refused_below_that_tier(program):
    gold = TierFactory(merchant=program.merchant, name="Gold")
    reward = RewardFactory(merchant=program.merchant, points_cost=10)
    reward.tiers.add(gold)
    account = account_with(program.merchant, 100)
    with pytest.raises(ValidationError, match="tier or membership"):
        reward_redeem(account=account, reward=reward, key="k")


def test_another_merchants_reward_is_not_found(program, other_merchant):
    account = account_with(program.merchant, 500)
    foreign = RewardFactory(merchant=other_merchant, points_cost=10)
    with pytest.raises(ValidationError, match="No such reward"):
        reward_redeem(account=account, reward=foreign, key="k")
    account.refresh_from_db()
    assert account.available == 500


def test_a_code_is_used_once(program):
    account = account_with(program.merchant, 500)
    redemption, _ = reward_redeem(
        account=account, reward=RewardFactory(merchant=program.merchant), key="k"
    )
    used = redemption_use(merchant_id=program.merchant_id, code=redemption.code.lower(), order=None)
    assert used.state == Redemption.State.USED
    with pytest.raises(ValidationError, match="already used"):
        redemption_use(merchant_id=program.merchant_id, code=redemption.code, order=None)
    with pytest.raises(ValidationError, match="No such code"):
        redemption_use(merchant_id=program.merchant_id + 1, code=redemption.code, order=None)
