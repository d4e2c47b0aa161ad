from __future__ import annotations

from decimal import Decimal

import factory

from loyalty.models import EarningRule, Program, Reward, Tier
from tests.merchants.factories import MerchantFactory


class ProgramFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Program

    merchant = factory.SubFactory(MerchantFactory)
    points_per_unit = Decimal("1.00")
    pending_days = 0


class TierFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tier

    merchant = factory.SubFactory(MerchantFactory)
    name = factory.Sequence(lambda n: f"Tier {n}")
    threshold = factory.Sequence(lambda n: Decimal(100 * (n + 1)))


class RewardFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Reward

    merchant = factory.SubFactory(MerchantFactory)
    name = factory.Sequence(lambda n: f"Reward {n}")
    kind = Reward.Kind.FIXED_AMOUNT
    points_cost = 100
    value = Decimal("5.00")


class EarningRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EarningRule

    merchant = factory.SubFactory(MerchantFactory)
    name = factory.Sequence(lambda n: f"Rule {n}")
    kind = EarningRule.Kind.CAMPAIGN_MULTIPLIER
