"""Reads of the loyalty program, always scoped by merchant."""

from __future__ import annotations

from django.shortcuts import get_object_or_404

from loyalty.models import (
    EarningRule,
    Membership,
    MembershipPlan,
    PointsAccount,
    PointsEntry,
    Program,
    Redemption,
    Referral,
    Reward,
    Tier,
    TierChange,
)
from merchants.models import Merchant


def program_get(*, merchant: Merchant) -> Program | None:
    return Program.objects.filter(merchant=merchant).first()


def reward_get(*, merchant: Merchant, pk: int) -> Reward:
    return get_object_or_404(Reward.objects.filter(merchant=merchant), pk=pk)


def reward_list(*, merchant: Merchant):
    return Reward.objects.filter(merchant=merchant).prefetch_related("tiers", "plans")


def plan_get(*, merchant: Merchant, pk: int) -> MembershipPlan:
    return get_object_or_404(MembershipPlan.objects.filter(merchant=merchant), pk=pk)


def plan_list(*, merchant: Merchant):
    return MembershipPlan.objects.filter(merchant=merchant)


def tier_get(*, merchant: Merchant, pk: int) -> Tier:
    return get_object_or_404(Tier.objects.filter(merchant=merchant), pk=pk)


def tier_list(*, merchant: Merchant):
    return Tier.objects.filter(merchant=merchant)


def rule_get(*, merchant: Merchant, pk: int) -> EarningRule:
    return get_object_or_404(EarningRule.objects.filter(merchant=merchant), pk=pk)


def rule_list(*, merchant: Merchant):
    return EarningRule.objects.filter(merchant=merchant)


def account_of(*, customer) -> PointsAccount | None:
    return (
        PointsAccount.objects.filter(customer=customer).select_related("tier", "tier_floor").first()
    )


def entries_of(*, account: PointsAccount, limit: int = 50) -> list[PointsEntry]:
    return list(
        account.entries.select_related("order", "created_by").order_by("-created_at", "-id")[:limit]
    )


def tier_changes_of(*, account: PointsAccount, limit: int = 20) -> list[TierChange]:
    return list(account.tier_changes.select_related("from_tier", "to_tier", "created_by")[:limit])


def memberships_of(*, customer) -> list[Membership]:
    return list(
        Membership.objects.filter(customer=customer)
        .select_related("plan")
        .order_by("-started_at", "-id")[:10]
    )


def redemptions_of(*, account: PointsAccount, limit: int = 20) -> list[Redemption]:
    return list(account.redemptions.select_related("reward").order_by("-created_at", "-id")[:limit])


def referral_get(*, merchant: Merchant, pk: int) -> Referral:
    return get_object_or_404(Referral.objects.filter(merchant=merchant), pk=pk)


def referrals_flagged(*, merchant: Merchant):
    return Referral.objects.filter(merchant=merchant, state=Referral.State.FLAGGED).select_related(
        "referrer", "friend"
    )
