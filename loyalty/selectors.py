"""Reads of the loyalty program, always scoped by merchant."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Count, F, Q, Sum
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
from loyalty.services.rewards import LIVE_STATES, reward_open_to
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


# --- The program's catalog, as customers see it -------------------------------------------
# Every customer of a shop reads the same program, tiers, rewards and plans, and they change
# when staff edit them, not per order. The rewards page keeps them in the cache under a
# version that any save or delete of those rows moves on (after its commit), so the next
# page reads them afresh; a reader that raced the change can only fill the old version's key.

CATALOG_SECONDS = 10 * 60


@dataclass
class Catalog:
    program: Program | None
    tiers: list[Tier]
    rewards: list[Reward]  # active ones, cheapest first, with tier_ids and plan_ids
    plans: list[MembershipPlan]  # open to new members


def _catalog_version_key(merchant_id: int) -> str:
    return f"loyalty-catalog-version:{merchant_id}"


def catalog_forget(*, merchant_id: int) -> None:
    """The shop's catalog changed: the next page reads it afresh. The version moves now
    (this transaction's own reads) and again at commit, so a page that read the old rows in
    between can only have filled a version no one reads any more."""
    from django.core.cache import cache
    from django.db import transaction

    def bump() -> None:
        key = _catalog_version_key(merchant_id)
        if not cache.add(key, 2, None):
            try:
                cache.incr(key)
            except ValueError:
                cache.set(key, 2, None)

    bump()
    transaction.on_commit(bump)


def catalog_changed(sender, instance, **kwargs) -> None:
    """Receives the saves and deletes of catalog rows (loyalty/apps.py)."""
    catalog_forget(merchant_id=instance.merchant_id)


def catalog_of(*, merchant: Merchant) -> Catalog:
    from django.core.cache import cache

    version = cache.get_or_set(_catalog_version_key(merchant.pk), 1, None)
    key = f"loyalty-catalog:{merchant.pk}:{version}"
    catalog = cache.get(key)
    if catalog is None:
        rewards = list(
            Reward.objects.filter(merchant=merchant, is_active=True)
            .prefetch_related("tiers", "plans")
            .order_by("points_cost", "pk")
        )
        for reward in rewards:
            reward.tier_ids = {t.pk for t in reward.tiers.all()}
            reward.plan_ids = {p.pk for p in reward.plans.all()}
            reward._prefetched_objects_cache = {}
        catalog = Catalog(
            program=program_get(merchant=merchant),
            tiers=list(Tier.objects.filter(merchant=merchant).order_by("threshold")),
            rewards=rewards,
            plans=list(plan_list(merchant=merchant).filter(is_active=True).order_by("price", "pk")),
        )
        cache.set(key, catalog, CATALOG_SECONDS)
    return catalog


# --- The customer's rewards page -------------------------------------------------------

EXPIRING_SOON_DAYS = 30


@dataclass
class RewardOffer:
    reward: Reward
    open_to_customer: bool  # the tier or plan it asks for
    affordable: bool
    left_for_customer: int | None  # under a per-customer limit
    short: int = 0  # points still needed


@dataclass
class RewardsPage:
    """What one customer's loyalty is worth, as their rewards page shows it."""

    program: Program | None
    account: PointsAccount | None
    available: int = 0
    pending: int = 0
    worth: Decimal = Decimal("0.00")
    expiring_points: int = 0
    expiring_on: datetime | None = None
    tiers: list[Tier] = field(default_factory=list)
    basis_value: Decimal | int = 0
    next_tier: Tier | None = None
    to_next_tier: Decimal | int = 0
    progress_percent: int = 0
    offers: list[RewardOffer] = field(default_factory=list)
    codes: list[Redemption] = field(default_factory=list)
    membership: Membership | None = None
    plans: list[MembershipPlan] = field(default_factory=list)
    referrals: list[Referral] = field(default_factory=list)
    history: list[PointsEntry] = field(default_factory=list)
    # Names the ledger's state the page was drawn from: a redeem form carries it, so the
    # same press sent twice (a double click, a second tab) spends once.
    ledger_state: int = 0

    @property
    def tier(self) -> Tier | None:
        return self.account.tier if self.account else None

    @property
    def referrals_rewarded(self) -> int:
        return sum(1 for r in self.referrals if r.state == Referral.State.REWARDED)


def _balances(page: RewardsPage, at: datetime) -> None:
    """Available and pending as of now (points whose return window ended since the hourly
    job last ran count as available, as a redemption would count them), and the points
    that expire soonest within the next 30 days, oldest lots first."""
    account = page.account
    window_end = at + timedelta(days=EXPIRING_SOON_DAYS)
    sums = account.entries.aggregate(
        matured=Sum(
            "points", filter=Q(available_at__gt=account.confirmed_through, available_at__lte=at)
        ),
        due=Sum("points", filter=Q(expires_at__lte=at, available_at__lte=at)),
        spent=Sum("points", filter=Q(expires_at__isnull=True, points__lt=0)),
    )
    matured = sums["matured"] or 0
    page.available = account.available + matured
    page.pending = account.pending - matured
    lots = account.entries.filter(
        expires_at__gt=at, expires_at__lte=window_end, available_at__lte=at
    ).order_by("expires_at")
    # What the lots due by a date hold beyond everything spent or expired so far (FIFO).
    held_beyond = (sums["due"] or 0) + (sums["spent"] or 0)
    for expires_at, points in lots.values_list("expires_at", "points"):
        held_beyond += points
        if held_beyond > 0:
            page.expiring_points = min(held_beyond, page.available)
            page.expiring_on = expires_at
            break


def _tier_progress(page: RewardsPage, customer, at: datetime) -> None:
    from loyalty.services.tiers import basis_values

    program, tiers = page.program, page.tiers
    if not tiers:
        return
    value = basis_values(program=program, customer_ids=[customer.pk], at=at).get(customer.pk) or 0
    page.basis_value = value
    current = page.tier.threshold if page.tier else None
    above = [t for t in tiers if current is None or t.threshold > current]
    page.next_tier = next((t for t in above if t.threshold > value), above[0] if above else None)
    page.progress_percent = 100
    if page.next_tier is not None:
        page.to_next_tier = max(page.next_tier.threshold - value, 0)
        if page.next_tier.threshold:
            page.progress_percent = min(int(value * 100 / page.next_tier.threshold), 100)


def _offers(page: RewardsPage, rewards: list[Reward], live_plan_id: int | None) -> None:
    limited = [r.pk for r in rewards if r.per_customer_limit is not None]
    taken = {}
    if limited and page.account is not None:
        taken = dict(
            page.account.redemptions.filter(reward_id__in=limited)
            .exclude(state=Redemption.State.CANCELLED)
            .values_list("reward_id")
            .annotate(n=Count("id"))
            .values_list("reward_id", "n")
        )
    tier_id = page.account.tier_id if page.account else None
    for reward in rewards:
        left = None
        if reward.per_customer_limit is not None:
            left = max(reward.per_customer_limit - taken.get(reward.pk, 0), 0)
        open_to = reward_open_to(tier_ids=reward.tier_ids, plan_ids=reward.plan_ids,
                                 tier_id=tier_id, plan_id=live_plan_id)  # fmt: skip
        page.offers.append(
            RewardOffer(
                reward=reward,
                open_to_customer=open_to,
                affordable=open_to and page.available >= reward.points_cost
                and left != 0 and reward.stock != 0,
                left_for_customer=left,
                short=max(reward.points_cost - page.available, 0),
            )
        )  # fmt: skip


def rewards_page(*, customer, at: datetime | None = None) -> RewardsPage:
    """Everything the customer's rewards page shows, in a fixed number of queries."""
    from django.utils.timezone import now

    at = at or now()
    catalog = catalog_of(merchant=customer.merchant)
    program = catalog.program
    if program is None or not program.is_active:
        return RewardsPage(program=None, account=None)
    program.merchant = customer.merchant
    # The tier comes from the catalog, not a join.
    account = PointsAccount.objects.filter(customer=customer).first()
    page = RewardsPage(program=program, account=account, tiers=catalog.tiers)
    if account is not None:
        if account.tier_id is not None:
            account.tier = next((t for t in catalog.tiers if t.pk == account.tier_id), None)
        _balances(page, at)
        # Only the names the page shows from the rows beside: no model per order, reward
        # or friend.
        page.history = list(
            account.entries.annotate(order_number=F("order__external_id"))
            .order_by("-created_at", "-id")[:20]
        )  # fmt: skip
        page.ledger_state = page.history[0].pk if page.history else 0
        page.codes = list(
            account.redemptions.annotate(reward_name=F("reward__name"))
            .order_by("-created_at", "-id")[:10]
        )  # fmt: skip
        page.referrals = list(
            Referral.objects.filter(referrer=customer)
            .annotate(friend_first_name=F("friend__first_name"))
            .order_by("-created_at", "-id")[:10]
        )  # fmt: skip
    page.worth = (Decimal(max(page.available, 0)) * program.point_value).quantize(Decimal("0.01"))
    _tier_progress(page, customer, at)
    live = [m for m in memberships_of(customer=customer) if m.state in LIVE_STATES]
    page.membership = live[0] if live else None
    page.plans = catalog.plans
    _offers(page, catalog.rewards, page.membership.plan_id if page.membership else None)
    return page
