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
    from django.db.models import Count

    return Tier.objects.filter(merchant=merchant).annotate(holders=Count("accounts"))


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


def program_figures(*, merchant: Merchant, at=None) -> dict:
    """The loyalty KPIs: members, points issued, redeemed and expired this month (merchant-
    local), the redemption rate (points redeemed ÷ points issued, all time), what the points
    still held are worth, and how many customers hold each tier."""
    from django.db.models import Count, Q, Sum
    from django.utils.timezone import now

    at = at or now()
    month_start = at.astimezone(merchant.zone).replace(
        day=1, hour=0, minute=0, second=0, microsecond=0
    )
    entries = PointsEntry.objects.filter(merchant=merchant)
    issued_kinds = Q(kind__in=[PointsEntry.Kind.EARN, PointsEntry.Kind.ADJUST], points__gt=0)
    this_month = Q(created_at__gte=month_start)
    sums = entries.aggregate(
        issued_month=Sum("points", filter=issued_kinds & this_month),
        redeemed_month=Sum("points", filter=Q(kind=PointsEntry.Kind.REDEEM) & this_month),
        expired_month=Sum("points", filter=Q(kind=PointsEntry.Kind.EXPIRE) & this_month),
        issued_all=Sum("points", filter=issued_kinds),
        redeemed_all=Sum("points", filter=Q(kind=PointsEntry.Kind.REDEEM)),
    )
    accounts = PointsAccount.objects.filter(merchant=merchant).aggregate(
        members=Count("id"), available=Sum("available"), pending=Sum("pending")
    )
    program = program_get(merchant=merchant)
    outstanding = (accounts["available"] or 0) + (accounts["pending"] or 0)
    issued_all = sums["issued_all"] or 0
    tiers = dict(
        PointsAccount.objects.filter(merchant=merchant)
        .values_list("tier_id")
        .annotate(n=Count("id"))
        .values_list("tier_id", "n")
    )
    return {
        "members": accounts["members"],
        "issued_month": sums["issued_month"] or 0,
        "redeemed_month": -(sums["redeemed_month"] or 0),
        "expired_month": -(sums["expired_month"] or 0),
        "redemption_rate": (-(sums["redeemed_all"] or 0) / issued_all) if issued_all else None,
        "outstanding_points": outstanding,
        "liability": outstanding * program.point_value if program else None,
        "tiers": [(tier, tiers.get(tier.pk, 0)) for tier in tier_list(merchant=merchant)],
        "no_tier": tiers.get(None, 0),
    }
