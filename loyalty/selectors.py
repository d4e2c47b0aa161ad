"""Reads of the loyalty program, always scoped by merchant."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

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
from loyalty.services.tiers import basis_value_read, basis_value_sql
from merchants.content import text_sql
from merchants.models import Merchant
from merchants.sql import moment


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

    # A grouped query keeps no Meta.ordering: the order is said again.
    return (
        Tier.objects.filter(merchant=merchant)
        .annotate(holders=Count("accounts"))
        .order_by("threshold", "id")
    )


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


def redemptions_of(*, account: PointsAccount, limit: int = 20) -> list[Redemption]:
    return list(account.redemptions.select_related("reward").order_by("-created_at", "-id")[:limit])


def referral_get(*, merchant: Merchant, pk: int) -> Referral:
    return get_object_or_404(Referral.objects.filter(merchant=merchant), pk=pk)


def referrals_flagged(*, merchant: Merchant):
    return Referral.objects.filter(merchant=merchant, state=Referral.State.FLAGGED).select_related(
        "referrer", "friend"
    )


FIGURES_SECONDS = 300


def figures_key(merchant_id: int) -> str:
    return f"loyalty-figures:{merchant_id}"


def program_figures_recent(*, merchant: Merchant) -> dict:
    """program_figures as they were at most FIGURES_SECONDS ago (`as_of` says when), from
    Django's cache: over a million accounts and their ledger they take seconds to add up,
    and every dashboard opening asks for them."""
    from datetime import timedelta

    from django.core.cache import cache
    from django.utils.timezone import now

    figures = cache.get(figures_key(merchant.pk))
    # Their own time says when they are due again, whatever the cache keeps them for.
    if figures is None or figures["as_of"] <= now() - timedelta(seconds=FIGURES_SECONDS):
        at = now()
        figures = {**program_figures(merchant=merchant, at=at), "as_of": at}
        cache.set(figures_key(merchant.pk), figures, FIGURES_SECONDS)
    return figures


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
        "tiers": [
            (tier, tiers.get(tier.pk, 0))
            for tier in Tier.objects.filter(merchant=merchant).order_by("threshold", "id")
        ],
        "no_tier": tiers.get(None, 0),
    }


# --- The program's catalog, as customers see it -------------------------------------------
# Every customer of a shop reads the same program, tiers, rewards and plans, and they change
# when staff edit them, not per order. The rewards page and orders keep them in the cache
# with the version they were read under; any save or delete of those rows moves the version
# on (now and after its commit), so the next reader finds the copy out of date and reads
# them afresh. The version and the copy come back in one round trip; a reader that raced a
# change can only store a copy marked with a version that is no longer current.

CATALOG_SECONDS = 10 * 60


@dataclass
class Catalog:
    program: Program | None
    tiers: list[Tier]
    rewards: list[Reward]  # active ones, cheapest first, with tier_ids and plan_ids
    plans: list[MembershipPlan]  # open to new members
    # What an order reads of the program besides its tiers: the active earning rules other
    # than event ones (Meta ordering), and whether the shop has any membership plan at all
    # (a closed plan's members still earn its multiplier; none means no membership query).
    order_rules: list[EarningRule] = field(default_factory=list)
    has_plans: bool = True

    def program_running(self, merchant: Merchant) -> Program | None:
        """The program if it is running, with its shop (the cached copy holds none)."""
        if self.program is None or not self.program.is_active:
            return None
        self.program.merchant = merchant
        return self.program


def _catalog_version_key(merchant_id: int) -> str:
    return f"loyalty-catalog-version:{merchant_id}"


def _version_new() -> int:
    # Never a number used before, even after the cache was emptied: a catalog cached under
    # an old version's key can't be taken for a new one.
    return time.time_ns()


def catalog_forget(*, merchant_id: int) -> None:
    """The shop's catalog changed: the next page reads it afresh. The version moves now
    (this transaction's own reads) and again at commit, so a page that read the old rows in
    between can only have filled a version no one reads any more."""
    from django.core.cache import cache
    from django.db import transaction

    def bump() -> None:
        key = _catalog_version_key(merchant_id)
        if not cache.add(key, _version_new(), None):
            try:
                cache.incr(key)
            except ValueError:
                cache.set(key, _version_new(), None)

    bump()
    transaction.on_commit(bump)


def catalog_changed(sender, instance, **kwargs) -> None:
    """Receives the saves and deletes of catalog rows (loyalty/apps.py)."""
    catalog_forget(merchant_id=instance.merchant_id)


def catalog_of(*, merchant: Merchant) -> Catalog:
    from django.core.cache import cache

    version_key = _catalog_version_key(merchant.pk)
    # "-4": copies stored as (version, catalog) with every language's texts; older shapes
    # are not read.
    key = f"loyalty-catalog-4:{merchant.pk}"
    found = cache.get_many([version_key, key])
    version = found.get(version_key)
    if version is None:  # the cache was emptied: a version no copy can carry
        version = cache.get_or_set(version_key, _version_new, None)
    stored_version, catalog = found.get(key) or (None, None)
    if stored_version != version:
        rewards = list(
            Reward.objects.filter(merchant=merchant, is_active=True)
            .prefetch_related("tiers", "plans")
            .order_by("points_cost", "pk")
        )
        plans = list(plan_list(merchant=merchant).order_by("price", "pk"))
        for reward in rewards:
            reward.tier_ids = {t.pk for t in reward.tiers.all()}
            reward.plan_ids = {p.pk for p in reward.plans.all()}
            reward._prefetched_objects_cache = {}
        catalog = Catalog(
            # The friend's welcome reward with it: the invitation panel names it.
            program=Program.objects.select_related("friend_reward")
            .filter(merchant=merchant)
            .first(),
            tiers=list(Tier.objects.filter(merchant=merchant).order_by("threshold")),
            rewards=rewards,
            plans=[plan for plan in plans if plan.is_active],
            order_rules=list(
                EarningRule.objects.filter(merchant=merchant, is_active=True).exclude(
                    kind=EarningRule.Kind.EVENT
                )
            ),
            has_plans=bool(plans),
        )
        cache.set(key, (version, catalog), CATALOG_SECONDS)
    return catalog


# --- The customer's rewards page -------------------------------------------------------

EXPIRING_SOON_DAYS = 30
CENT = Decimal("0.01")


@dataclass
class RewardOffer:
    reward: Reward
    open_to_customer: bool  # the tier or plan it asks for
    affordable: bool
    left_for_customer: int | None  # under a per-customer limit
    short: int = 0  # points still needed


# The rows beside the account hold only what the page shows of them: no model per entry,
# code or friend. Each names its kind or state as the model's choices do, in the active
# language.


def _label(choices, value: str):
    try:
        return choices(value).label
    except ValueError:
        return value


@dataclass(slots=True)
class HistoryLine:
    pk: int
    kind: str
    points: int
    note: str
    created_at: datetime
    available_at: datetime
    order_number: str | None

    @property
    def kind_label(self):
        return _label(PointsEntry.Kind, self.kind)


@dataclass(slots=True)
class CodeLine:
    code: str
    state: str
    reward_name: str

    @property
    def state_label(self):
        return _label(Redemption.State, self.state)


@dataclass(slots=True)
class ReferralLine:
    state: str
    friend_first_name: str

    @property
    def state_label(self):
        return _label(Referral.State, self.state)


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
    codes: list[CodeLine] = field(default_factory=list)
    membership: Membership | None = None
    plans: list[MembershipPlan] = field(default_factory=list)
    referrals: list[ReferralLine] = field(default_factory=list)
    history: list[HistoryLine] = field(default_factory=list)
    # Names the ledger's state the page was drawn from: a redeem form carries it, so the
    # same press sent twice (a double click, a second tab) spends once.
    ledger_state: int = 0

    @property
    def tier(self) -> Tier | None:
        return self.account.tier if self.account else None

    @property
    def referrals_rewarded(self) -> int:
        return sum(1 for r in self.referrals if r.state == Referral.State.REWARDED)


def _tier_progress(page: RewardsPage, value) -> None:
    """How far the customer's value on the tier basis (services.tiers) takes her."""
    tiers = page.tiers
    if not tiers:
        return
    page.basis_value = value
    current = page.tier.threshold if page.tier else None
    above = [t for t in tiers if current is None or t.threshold > current]
    page.next_tier = next((t for t in above if t.threshold > value), above[0] if above else None)
    page.progress_percent = 100
    if page.next_tier is not None:
        gap = max(page.next_tier.threshold - value, 0)
        # An amount as money (SQLite sums amounts into long binary fractions).
        page.to_next_tier = gap.quantize(CENT) if isinstance(gap, Decimal) else gap
        if page.next_tier.threshold:
            page.progress_percent = min(int(value * 100 / page.next_tier.threshold), 100)


def _offers(
    page: RewardsPage, rewards: list[Reward], live_plan_id: int | None, taken: dict[int, int]
) -> None:
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


# The page's reads, by hand: it is the page customers open most, and through the ORM these
# few small reads cost more to build and to turn into models than the database spends on
# them. Plain SQL that PostgreSQL and SQLite both read; every table scoped by the merchant.
# On PostgreSQL psycopg binds the parameters on the server and prepares a statement once a
# connection has run it a few times (DATABASES OPTIONS prepare_threshold): planning these
# cost more than running them.

# The customer's account with what its ledger says as of %(at)s (points whose return window
# ended since the hourly job last ran count as available, as a redemption would count them;
# what is due to expire; what was spent), their live membership with its plan, and their
# value on the tier basis (services.tiers.basis_value_sql). One `taken_<n>` column per
# reward with a per-customer limit follows.
_ACCOUNT_SQL = """
SELECT a.id, a.available, a.pending, a.referral_code, a.tier_id,
  (SELECT SUM(e.points) FROM loyalty_pointsentry e WHERE e.account_id = a.id
     AND e.available_at > a.confirmed_through AND e.available_at <= %(at)s),
  (SELECT SUM(e.points) FROM loyalty_pointsentry e WHERE e.account_id = a.id
     AND e.expires_at <= %(at)s AND e.available_at <= %(at)s),
  (SELECT SUM(e.points) FROM loyalty_pointsentry e WHERE e.account_id = a.id
     AND e.expires_at IS NULL AND e.points < 0),
  m.id, m.state, m.current_period_end, p.id, {plan_name}, {plan_perks}, {basis}{taken}
FROM customers_customer c
LEFT JOIN loyalty_pointsaccount a ON a.customer_id = c.id AND a.merchant_id = c.merchant_id
LEFT JOIN loyalty_membership m ON m.id = (
  SELECT m2.id FROM loyalty_membership m2
  WHERE m2.customer_id = c.id AND m2.merchant_id = c.merchant_id AND m2.state IN ({live})
  ORDER BY m2.started_at DESC, m2.id DESC LIMIT 1)
LEFT JOIN loyalty_membershipplan p ON p.id = m.plan_id AND p.merchant_id = c.merchant_id
WHERE c.id = %(customer)s AND c.merchant_id = %(merchant)s
"""
_TAKEN_SQL = """,
  (SELECT COUNT(*) FROM loyalty_redemption r WHERE r.account_id = a.id
     AND r.reward_id = %(reward_{n})s AND r.state <> 'cancelled')"""
# The account's four lists in one statement, one part each, every part in its own order
# (a database returns the parts of a UNION in no promised order: the lists are sorted again
# by the columns they came sorted by): the latest history ('h'), the lots that expire
# within the next days ('l'), the latest codes ('c') and the friends invited ('r'). Columns:
# part, id, kind or state, points, note or code, time, available_at, order number or name;
# a column a part has no use for holds a NULL, or a value of the column's type where a NULL
# would be taken for text.
_LISTS_SQL = """
SELECT * FROM (
  SELECT 'h', e.id, e.kind, e.points, e.note, e.created_at, e.available_at, o.external_id
  FROM loyalty_pointsentry e LEFT JOIN customers_order o ON o.id = e.order_id
  WHERE e.account_id = %(account)s AND e.merchant_id = %(merchant)s
  ORDER BY e.created_at DESC, e.id DESC LIMIT 20) h
UNION ALL SELECT * FROM (
  SELECT 'l', id, NULL, points, NULL, expires_at, available_at, NULL FROM loyalty_pointsentry
  WHERE account_id = %(account)s AND merchant_id = %(merchant)s
    AND expires_at > %(at)s AND expires_at <= %(soon)s AND available_at <= %(at)s) l
UNION ALL SELECT * FROM (
  SELECT 'c', r.id, r.state, 0, r.code, r.created_at, r.created_at, {reward_name}
  FROM loyalty_redemption r JOIN loyalty_reward w ON w.id = r.reward_id
  WHERE r.account_id = %(account)s AND r.merchant_id = %(merchant)s
  ORDER BY r.created_at DESC, r.id DESC LIMIT 10) c
UNION ALL SELECT * FROM (
  SELECT 'r', r.id, r.state, 0, NULL, r.created_at, r.created_at, f.first_name
  FROM loyalty_referral r JOIN customers_customer f ON f.id = r.friend_id
  WHERE r.referrer_id = %(customer)s AND r.merchant_id = %(merchant)s
  ORDER BY r.created_at DESC, r.id DESC LIMIT 10) r
"""


def _lists(params: dict) -> dict[str, list[tuple]]:
    """_LISTS_SQL's rows by part, times made aware, each part in its order."""
    parts: dict[str, list[tuple]] = {"h": [], "l": [], "c": [], "r": []}
    sql = _LISTS_SQL.format(reward_name=text_sql("w.name"))
    for part, pk, kind, points, text, created, available_at, label in _rows(sql, params):
        parts[part].append((moment(created), pk, kind, points, text, moment(available_at), label))
    for part in ("h", "c", "r"):
        parts[part].sort(reverse=True)  # the latest first
    parts["l"].sort()  # soonest first
    return parts


def _rows(sql: str, params: dict) -> list[tuple]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _expiring(page: RewardsPage, lots, held_beyond: int) -> None:
    """The points that expire soonest within the window, oldest lots first: what the lots
    due by a date hold beyond everything spent or expired so far (FIFO)."""
    for expires_at, points in lots:
        held_beyond += points
        if held_beyond > 0:
            page.expiring_points = min(held_beyond, page.available)
            page.expiring_on = expires_at
            break


def rewards_page(*, customer, at: datetime | None = None) -> RewardsPage:
    """Everything the customer's rewards page shows, in a fixed number of queries."""
    from django.db import connection
    from django.utils.timezone import now

    at = at or now()
    catalog = catalog_of(merchant=customer.merchant)
    program = catalog.program_running(customer.merchant)
    if program is None:
        return RewardsPage(program=None, account=None)
    adapt = connection.ops.adapt_datetimefield_value
    params = {"customer": customer.pk, "merchant": customer.merchant_id, "at": adapt(at),
              "soon": adapt(at + timedelta(days=EXPIRING_SOON_DAYS))}  # fmt: skip
    limited = [r.pk for r in catalog.rewards if r.per_customer_limit is not None]
    params.update({f"reward_{n}": pk for n, pk in enumerate(limited)})
    basis = "NULL"
    if catalog.tiers:
        basis, basis_params = basis_value_sql(program=program, at=at, customer="c.id")
        params.update(basis_params)
    sql = _ACCOUNT_SQL.format(
        basis=basis,
        taken="".join(_TAKEN_SQL.format(n=n) for n in range(len(limited))),
        live=", ".join(f"'{state}'" for state in LIVE_STATES),
        plan_name=text_sql("p.name"),
        plan_perks=text_sql("p.perks"),
    )
    (row,) = _rows(sql, params)
    account_id, available, pending, referral_code, tier_id, matured, due, spent = row[:8]
    membership_id, state, period_end, plan_id, plan_name, plan_perks = row[8:14]
    account = None
    if account_id is not None:
        account = PointsAccount(id=account_id, merchant_id=customer.merchant_id,
                                customer_id=customer.pk, available=available, pending=pending,
                                referral_code=referral_code, tier_id=tier_id)  # fmt: skip
        account.customer = customer
        # The tier comes from the catalog, not a join.
        account.tier = next((t for t in catalog.tiers if t.pk == tier_id), None)
    page = RewardsPage(program=program, account=account, tiers=catalog.tiers)
    if account is not None:
        params["account"] = account.pk
        page.available = available + (matured or 0)
        page.pending = pending - (matured or 0)
        lists = _lists(params)
        # Each row: (time, id, kind or state, points, note or code, available_at, label).
        _expiring(page, [(row[0], row[3]) for row in lists["l"]], (due or 0) + (spent or 0))
        page.history = [
            HistoryLine(pk, kind, points, note, created, available_at, order)
            for created, pk, kind, points, note, available_at, order in lists["h"]
        ]
        page.ledger_state = page.history[0].pk if page.history else 0
        page.codes = [CodeLine(row[4], row[2], row[6]) for row in lists["c"]]
        page.referrals = [ReferralLine(row[2], row[6]) for row in lists["r"]]
    page.worth = (Decimal(max(page.available, 0)) * program.point_value).quantize(Decimal("0.01"))
    _tier_progress(page, basis_value_read(program=program, value=row[14]))
    if membership_id is not None:
        plan = MembershipPlan(id=plan_id, merchant_id=customer.merchant_id, name=plan_name,
                              perks=plan_perks)  # fmt: skip
        page.membership = Membership(id=membership_id, merchant_id=customer.merchant_id,
                                     customer_id=customer.pk, plan=plan, state=state,
                                     current_period_end=moment(period_end))  # fmt: skip
    page.plans = catalog.plans
    taken = dict(zip(limited, row[15:], strict=True)) if account is not None else {}
    _offers(page, catalog.rewards, plan_id if membership_id is not None else None, taken)
    return page
